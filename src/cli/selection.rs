//! The options that pick which samples of a recording count, shared by
//! `report` and `diff` so that both read them the same way.

use clap::Args;

use netprof::model::off_cpu::StateSelection;
use netprof::model::profile::Filter;
use netprof::model::view::ViewFilter;
use netprof::sys::cpus::CpuList;

use super::values;

#[derive(Args, Debug)]
pub struct SelectionArgs {
    /// Only samples of these commands (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub comm: Vec<String>,
    /// Only samples of these processes (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<i32>,
    /// Only samples taken on these CPUs, e.g. 0,2-3
    #[arg(long, value_parser = values::cpus_of_any_machine)]
    pub cpu: Option<CpuList>,
    /// Only stacks passing through this kernel module (or `bpf`)
    #[arg(long)]
    pub module: Option<String>,
    /// This event of the recording (default: report's text shows each in turn, the other outputs
    /// and diff the first)
    /// (`offcpu-time`: the off-CPU time of every state as one event; `all`: that and cpu-clock
    /// in one unit, nanoseconds: wall-clock time)
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,
    /// Only off-CPU time in these thread states (of a recording made with --off-cpu): letters
    /// among R, S, D, I, T, t, P, comma-separated
    #[arg(long, value_name = "STATES", value_parser = values::states)]
    pub state: Option<StateSelection>,
    /// Leave out samples taken in the kernel's idle loop
    #[arg(long)]
    pub no_idle: bool,
}

impl SelectionArgs {
    /// What is kept while the recording is read; `keep_samples` keeps
    /// every sample besides the counts (`report --samples`).
    pub fn filter(&self, keep_samples: bool) -> Filter {
        Filter {
            comms: self.comm.clone(),
            pids: self.pid.clone(),
            cpus: self
                .cpu
                .as_ref()
                .map(|c| c.as_slice().to_vec())
                .unwrap_or_default(),
            keep_samples,
        }
    }

    /// What a view of `event` (all events when `None`) keeps.
    pub fn view(&self, event: Option<u16>) -> ViewFilter<'_> {
        ViewFilter {
            module: self.module.as_deref(),
            event,
            no_idle: self.no_idle,
        }
    }
}
