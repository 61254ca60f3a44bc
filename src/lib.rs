//! nmt
