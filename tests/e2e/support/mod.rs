//! What the tests share, each helper once: `harness` runs the real binaries
//! (test directories, processes with line channels, deadlines).

pub mod harness;
