//! Image batches: seeded epoch permutations and light augmentation (random shifts, horizontal flips).

use super::idx::ImageSet;
use crate::model::Batch;
use crate::rng::{stream, Rng};

/// The permutation of `0..n` used in `epoch` (Fisher–Yates keyed by `(seed, epoch)`).
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mut rng = Rng::keyed(seed, stream::EPOCH, epoch as u64);
    for i in (1..n).rev() {
        idx.swap(i, rng.below(i + 1));
    }
    idx
}

/// Draws training batches in epoch order; caches the current epoch's permutation.
#[derive(Clone, Debug, Default)]
pub struct ImageSampler {
    cached: Option<(usize, Vec<u32>)>,
}

/// How training images are augmented.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Largest shift in pixels (zero padding), in each direction.
    pub max_shift: usize,
    /// Flip left-right with probability 1/2.
    pub hflip: bool,
}

impl ImageSampler {
    /// Training batch `step`: images `step·batch ..` of the seeded epoch sequence, augmented with a
    /// generator keyed by `(seed, step)`. A pure function of `(seed, step)`.
    pub fn batch(&mut self, set: &ImageSet, seed: u64, step: usize, batch: usize, aug: Option<Augment>) -> Batch {
        let n = set.len();
        let (r, c) = (set.rows, set.cols);
        let mut images = Vec::with_capacity(batch * r * c);
        let mut labels = Vec::with_capacity(batch);
        let mut rng = Rng::keyed(seed, stream::AUGMENT, step as u64);
        for i in 0..batch {
            let g = step * batch + i;
            let epoch = g / n;
            if self.cached.as_ref().map(|c| c.0) != Some(epoch) {
                self.cached = Some((epoch, epoch_order(seed, epoch, n)));
            }
            let id = self.cached.as_ref().unwrap().1[g % n] as usize;
            let src = set.image(id);
            match aug {
                Some(a) => {
                    let span = 2 * a.max_shift + 1;
                    let dy = rng.below(span) as isize - a.max_shift as isize;
                    let dx = rng.below(span) as isize - a.max_shift as isize;
                    let flip = a.hflip && rng.below(2) == 1;
                    for y in 0..r as isize {
                        for x in 0..c as isize {
                            let sy = y - dy;
                            let mut sx = x - dx;
                            if flip {
                                sx = c as isize - 1 - sx;
                            }
                            let v = if sy >= 0 && sy < r as isize && sx >= 0 && sx < c as isize {
                                src[sy as usize * c + sx as usize]
                            } else {
                                0.0
                            };
                            images.push(v);
                        }
                    }
                }
                None => images.extend_from_slice(src),
            }
            labels.push(set.labels[id] as u32);
        }
        Batch::Vit { images, labels, batch }
    }
}

/// Evaluation batches over the first `max` images of `set`, in order, without augmentation.
pub fn eval_batches(set: &ImageSet, batch: usize, max: usize) -> Vec<Batch> {
    let n = set.len().min(max);
    (0..n)
        .step_by(batch)
        .map(|s| {
            let e = (s + batch).min(n);
            let mut images = Vec::new();
            for i in s..e {
                images.extend_from_slice(set.image(i));
            }
            Batch::Vit { images, labels: set.labels[s..e].iter().map(|&l| l as u32).collect(), batch: e - s }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_permutations_and_batches_reproducible() {
        let o = epoch_order(3, 1, 100);
        let mut s = o.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<u32>>());
        assert_ne!(o, epoch_order(3, 2, 100));
        let set =
            ImageSet { pixels: (0..10 * 16).map(|i| i as f32).collect(), labels: (0..10).collect(), rows: 4, cols: 4 };
        let aug = Some(Augment { max_shift: 1, hflip: true });
        let a = ImageSampler::default().batch(&set, 1, 7, 4, aug);
        let mut warm = ImageSampler::default();
        warm.batch(&set, 1, 2, 4, aug);
        assert_eq!(a, warm.batch(&set, 1, 7, 4, aug));
    }
}
