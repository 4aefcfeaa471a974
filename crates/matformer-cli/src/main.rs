//! `matformer`: inspect, run, extract and evaluate MatFormer models.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Default model: the MatLM trained on Shakespeare that ships with the repository.
pub const DEFAULT_MODEL: &str = "models/matlm-shakespeare.safetensors";

#[derive(Parser)]
#[command(name = "matformer", version, about = "MatFormer: one set of weights, many nested model sizes")]
struct Cli {
    /// Where models run: `auto` (a hardware GPU if there is one, else the CPU; MATFORMER_DEVICE=cpu|gpu
    /// decides instead when set), `cpu` or `gpu` (any Vulkan/Metal/DX12 adapter, software ones included).
    #[arg(long, global = true, default_value = "auto", value_name = "auto|cpu|gpu")]
    device: matformer_runtime::DeviceKind,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a model's config and, for each named submodel, its parameters and FLOPs per token.
    Info {
        /// Model file or directory.
        #[arg(default_value = DEFAULT_MODEL)]
        model: PathBuf,
    },
    /// Generate text from a prompt with a chosen submodel.
    Generate(commands::GenerateArgs),
    /// Write a submodel as a standalone, smaller checkpoint.
    Extract {
        /// Model file or directory.
        #[arg(long, default_value = DEFAULT_MODEL)]
        model: PathBuf,
        /// Submodel spec: `s`..`xl`, a per-layer list like `s,m,l,xl`, `-` to skip a layer, `;skip=i,j`.
        #[arg(long)]
        submodel: String,
        /// Output `.safetensors` path.
        #[arg(long)]
        out: PathBuf,
        /// Store the weights as f32, f16 or bf16 (default: as loaded).
        #[arg(long)]
        dtype: Option<String>,
    },
    /// Evaluate submodels: next-token loss and perplexity on a text file, or accuracy on an IDX image set.
    Eval(commands::EvalArgs),
    /// Mix'n'Match planner: the best submodel under a params, FLOPs or latency budget.
    Plan(commands::PlanArgs),
    /// Train a MatFormer (all granularities jointly) on the CPU; resumable after a kill.
    Train(commands::TrainArgs),
    /// Agreement of each submodel with the full model (greedy tokens, KL) on a text file.
    Consistency(commands::ConsistencyArgs),
}

fn main() -> ExitCode {
    // The Vulkan loader complains on stderr when this is unset (common in containers); it only needs a
    // writable directory. Set before any thread exists.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let cli = Cli::parse();
    commands::set_device(cli.device);
    let result = match cli.command {
        Command::Info { model } => commands::info(&model),
        Command::Generate(args) => commands::generate(args),
        Command::Extract { model, submodel, out, dtype } => {
            commands::extract(&model, &submodel, &out, dtype.as_deref())
        }
        Command::Eval(args) => commands::eval(args),
        Command::Plan(args) => commands::plan(args),
        Command::Consistency(args) => commands::consistency(args),
        Command::Train(args) => commands::train(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
