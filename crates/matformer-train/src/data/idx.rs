//! IDX image/label files (MNIST, Fashion-MNIST), optionally gzip-compressed.

use std::io::Read;
use std::path::{Path, PathBuf};

/// A labelled image set in memory, pixels scaled to [0, 1].
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// `[n, rows*cols]` pixels in [0, 1].
    pub pixels: Vec<f32>,
    /// `n` labels.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: bad gzip data: {e}", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn parse_idx<'a>(bytes: &'a [u8], want_dims: usize, path: &Path) -> Result<(Vec<usize>, &'a [u8]), String> {
    let bad = |why: &str| format!("{}: not an IDX file: {why}", path.display());
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("bad magic"));
    }
    if bytes[2] != 0x08 {
        return Err(bad("element type is not unsigned byte"));
    }
    let nd = bytes[3] as usize;
    if nd != want_dims {
        return Err(bad(&format!("has {nd} dimensions, expected {want_dims}")));
    }
    let header = 4 + 4 * nd;
    if bytes.len() < header {
        return Err(bad("truncated header"));
    }
    let dims: Vec<usize> =
        (0..nd).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    let n: usize = dims.iter().product();
    if bytes.len() - header != n {
        return Err(bad(&format!("expected {n} data bytes, found {}", bytes.len() - header)));
    }
    Ok((dims, &bytes[header..]))
}

/// The labels file that goes with an images file (`...-images-idx3-ubyte[.gz]` → `...-labels-idx1-ubyte[.gz]`).
pub fn labels_path_for(images: &Path) -> PathBuf {
    let name =
        images.file_name().map(|n| n.to_string_lossy().replace("images-idx3", "labels-idx1")).unwrap_or_default();
    images.with_file_name(name)
}

/// Load an images file and its labels file.
pub fn load_idx(images: &Path, labels: &Path) -> Result<ImageSet, String> {
    let missing = |p: &Path| {
        if p.starts_with(FASHION_MNIST_DIR) {
            format!("{} not found: install Fashion-MNIST with `apt-get install -y dataset-fashion-mnist`", p.display())
        } else {
            format!("{} not found", p.display())
        }
    };
    if !images.is_file() {
        return Err(missing(images));
    }
    if !labels.is_file() {
        return Err(missing(labels));
    }
    let ib = read_maybe_gz(images)?;
    let lb = read_maybe_gz(labels)?;
    let (idims, ipix) = parse_idx(&ib, 3, images)?;
    let (ldims, lab) = parse_idx(&lb, 1, labels)?;
    if idims[0] != ldims[0] {
        return Err(format!(
            "{} has {} images but {} has {} labels",
            images.display(),
            idims[0],
            labels.display(),
            ldims[0]
        ));
    }
    Ok(ImageSet {
        pixels: ipix.iter().map(|&p| p as f32 / 255.0).collect(),
        labels: lab.to_vec(),
        rows: idims[1],
        cols: idims[2],
    })
}

/// Fashion-MNIST's train (`train = true`) or test split from the Debian package.
pub fn fashion_mnist(train: bool) -> Result<ImageSet, String> {
    let split = if train { "train" } else { "t10k" };
    let dir = Path::new(FASHION_MNIST_DIR);
    let images = dir.join(format!("{split}-images-idx3-ubyte.gz"));
    load_idx(&images, &labels_path_for(&images))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let dir = std::env::temp_dir().join(format!("idx-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("x-images-idx3-ubyte");
        let mut b = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
        b.extend([0, 255, 51, 102, 1, 2, 3, 4]);
        std::fs::write(&img, &b).unwrap();
        std::fs::write(labels_path_for(&img), [0, 0, 8, 1, 0, 0, 0, 2, 7, 3]).unwrap();
        let s = load_idx(&img, &labels_path_for(&img)).unwrap();
        assert_eq!((s.len(), s.rows, s.cols), (2, 2, 2));
        assert_eq!(s.labels, vec![7, 3]);
        assert!((s.image(0)[1] - 1.0).abs() < 1e-6);
        std::fs::write(&img, &b[..b.len() - 1]).unwrap();
        assert!(load_idx(&img, &labels_path_for(&img)).unwrap_err().contains("expected 8 data bytes"));
        let e = load_idx(Path::new("/usr/share/datasets/fashion-mnist/nope"), &img).unwrap_err();
        assert!(e.contains("apt-get install -y dataset-fashion-mnist"), "{e}");
    }
}
