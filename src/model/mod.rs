//! The profile model: what a recording holds once read ([`profile`], read by
//! [`read`] and counted by [`aggregate`], its stacks told apart by
//! [`stack_table`]), its kernel symbols and frame names
//! ([`kernel_symbols`], [`symbolize`]), tracepoint fields
//! ([`tracepoint_format`]), the filtered, named [`view`] every output is
//! drawn from, latency histograms ([`latency`]) and call paths
//! ([`funcgraph`]) and off-CPU time ([`off_cpu`]).

mod aggregate;
mod debug_file;
pub mod funcgraph;
mod in_place;
pub mod kernel_symbols;
pub mod latency;
pub mod off_cpu;
pub mod profile;
mod read;
mod stack_table;
pub mod symbolize;
pub mod tracepoint_format;
pub mod view;
