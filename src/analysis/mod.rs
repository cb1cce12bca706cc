//! What the numbers mean: comparisons of recordings and of latency results
//! before and after a change ([`diff`]), the statistics behind them
//! ([`stats`]), and the cost figures of BPF programs ([`bpf_cost`]). Works
//! on the model, never on rendered text.

pub mod bpf_cost;
pub mod diff;
pub mod stats;
