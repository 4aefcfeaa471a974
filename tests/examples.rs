//! Runs every example in `examples/` (as CI must): each is included as a module and its `main` called.

#[path = "../examples/static_submodel.rs"]
mod static_submodel;

#[path = "../examples/speculative.rs"]
mod speculative;

#[path = "../examples/governor.rs"]
mod governor;

#[test]
fn example_static_submodel_runs() {
    static_submodel::main();
}

#[test]
fn example_speculative_runs() {
    speculative::main();
}

#[test]
fn example_governor_runs() {
    governor::main();
}
