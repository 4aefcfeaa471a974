//! Import of Hugging Face checkpoint directories (placeholder, filled in below).
