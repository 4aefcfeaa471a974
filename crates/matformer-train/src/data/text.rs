//! Byte-level Shakespeare: whole plays for training, other whole plays held out for validation.

use std::path::{Path, PathBuf};

use crate::model::Batch;
use crate::rng::{stream, Rng};

/// Plays (file stems) held out for validation; every other `*.txt` in the directory is training text.
pub const VALIDATION_PLAYS: &[&str] = &["richard_ii", "taming_of_the_shrew"];

/// The vendored text directory (`data/shakespeare` in the repository).
pub fn default_dir() -> PathBuf {
    let local = PathBuf::from("data/shakespeare");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/shakespeare")
}

/// Training and validation bytes.
#[derive(Clone, Debug)]
pub struct TextData {
    /// Training plays, concatenated (separated by blank lines).
    pub train: Vec<u8>,
    /// Held-out plays, concatenated.
    pub val: Vec<u8>,
    /// Training play names.
    pub train_plays: Vec<String>,
    /// Validation play names.
    pub val_plays: Vec<String>,
}

impl TextData {
    /// Load every `*.txt` under `dir` (sorted by name) and split off [`VALIDATION_PLAYS`].
    pub fn load(dir: &Path) -> Result<Self, String> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("{}: {e} (the Shakespeare text directory)", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        let mut d = TextData { train: Vec::new(), val: Vec::new(), train_plays: Vec::new(), val_plays: Vec::new() };
        for f in files {
            let stem = f.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            let bytes = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let (buf, names) = if VALIDATION_PLAYS.contains(&stem.as_str()) {
                (&mut d.val, &mut d.val_plays)
            } else {
                (&mut d.train, &mut d.train_plays)
            };
            if !buf.is_empty() {
                buf.extend_from_slice(b"\n\n\n");
            }
            buf.extend_from_slice(&bytes);
            names.push(stem);
        }
        if d.train.is_empty() || d.val.is_empty() {
            return Err(format!(
                "{}: need training plays and the validation plays {VALIDATION_PLAYS:?} as *.txt files",
                dir.display()
            ));
        }
        Ok(d)
    }
}

/// Training batch `step`: `batch` random windows of `seq + 1` bytes, a pure function of `(seed, step)`.
pub fn lm_batch(text: &[u8], seed: u64, step: usize, batch: usize, seq: usize) -> Batch {
    assert!(text.len() > seq + 1, "text shorter than one window");
    let mut rng = Rng::keyed(seed, stream::WINDOWS, step as u64);
    let mut tokens = Vec::with_capacity(batch * seq);
    let mut targets = Vec::with_capacity(batch * seq);
    for _ in 0..batch {
        let o = rng.below(text.len() - seq);
        tokens.extend(text[o..o + seq].iter().map(|&b| b as u32));
        targets.extend(text[o + 1..o + seq + 1].iter().map(|&b| b as u32));
    }
    Batch::Lm { tokens, targets, batch, seq }
}

/// Evaluation batches: up to `max_windows` evenly spaced, non-overlapping windows over `text`, grouped
/// into batches of `batch`.
pub fn lm_eval_batches(text: &[u8], seq: usize, batch: usize, max_windows: usize) -> Vec<Batch> {
    let total = (text.len() - 1) / seq;
    let n = total.min(max_windows).max(1);
    let stride = total / n;
    let offsets: Vec<usize> = (0..n).map(|i| i * stride * seq).collect();
    offsets
        .chunks(batch)
        .map(|c| {
            let mut tokens = Vec::new();
            let mut targets = Vec::new();
            for &o in c {
                tokens.extend(text[o..o + seq].iter().map(|&b| b as u32));
                targets.extend(text[o + 1..o + seq + 1].iter().map(|&b| b as u32));
            }
            Batch::Lm { tokens, targets, batch: c.len(), seq }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_split_holds_out_whole_plays() {
        let d = TextData::load(&default_dir()).unwrap();
        assert_eq!(d.val_plays, vec!["richard_ii".to_string(), "taming_of_the_shrew".to_string()]);
        assert!(d.train_plays.len() >= 10 && !d.train_plays.iter().any(|p| d.val_plays.contains(p)));
        assert!(d.train.len() > 1_000_000 && d.val.len() > 200_000);
        let b = lm_batch(&d.train, 1, 5, 3, 16);
        assert_eq!(b, lm_batch(&d.train, 1, 5, 3, 16));
        assert_ne!(b, lm_batch(&d.train, 1, 6, 3, 16));
        let Batch::Lm { tokens, targets, .. } = &b else { unreachable!() };
        assert_eq!(&tokens[1..16], &targets[..15]);
        let ev = lm_eval_batches(&d.val, 64, 8, 20);
        assert_eq!(ev.iter().map(|b| b.n_targets()).sum::<usize>(), 20 * 64);
    }
}
