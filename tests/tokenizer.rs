//! Tokenizers: byte-level round trip, and a Hugging Face tokenizer.json against ids recorded by the
//! Python `tokenizers` library (fixture from scripts/hf_reference.py).

mod common;

use common::fixture;
use matformer::runtime::Tokenizer;

#[test]
fn byte_level_round_trips_any_text() {
    let t = Tokenizer::Bytes;
    let text = "To be, or not to be:\n café ☃";
    let ids = t.encode(text).unwrap();
    assert_eq!(ids.len(), text.len());
    assert_eq!(t.decode(&ids).unwrap(), text);
    assert!(t.decode(&[300]).is_err());
}

#[test]
fn hf_tokenizer_json_matches_python() {
    let t = Tokenizer::from_file(&fixture("tokenizer/tokenizer.json")).unwrap();
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("tokenizer/expected.json")).unwrap()).unwrap();
    assert!(cases.len() >= 5);
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let want: Vec<u32> = c["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(t.encode(text).unwrap(), want, "encoding {text:?}");
        assert_eq!(t.decode(&want).unwrap(), text, "decoding {text:?}");
    }
    assert!(Tokenizer::from_file(&fixture("hf/llama/config.json")).is_err());
}
