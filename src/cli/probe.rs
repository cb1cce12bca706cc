//! `netprof probe`: persistent probes, like `perf probe`.

use clap::Args;

use netprof::error::Error;
use netprof::probe::persistent::{self, ProbeRequest};
use netprof::probe::resolve::Resolver;
use netprof::Result;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  netprof probe hsr_forward_skb\n  netprof probe -m hsr 'hsr_*'\n  netprof probe tcp_sendmsg%return\n  netprof probe --list -m hsr\n  netprof probe --del --all\n\nA probe stays until --del; record with it as -e netprof:FUNC. For a probe that lives only\nas long as one recording, use netprof record -e kprobe:FUNC."
)]
pub struct ProbeArgs {
    /// Function to probe: FUNC, FUNC%return (a return probe) or a glob such as 'hsr_*', then optionally
    /// arguments to record at each hit: BTF names (len) or positions (len=$arg3)
    pub function: Vec<String>,
    /// Only functions of this module
    #[arg(short = 'm', long)]
    pub module: Option<String>,
    /// List the functions that can be probed (optionally matching FUNCTION as a glob)
    #[arg(long, conflicts_with = "del")]
    pub list: bool,
    /// Remove netprof's probes with these names (globs allowed)
    #[arg(long, num_args = 0.., value_name = "NAME")]
    pub del: Option<Vec<String>>,
    /// With --del: remove all of netprof's probes
    #[arg(long, requires = "del")]
    pub all: bool,
    /// Allow a glob to place more than 300 probes
    #[arg(long)]
    pub force: bool,
    /// Say how probes were attached
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

pub fn run(args: ProbeArgs) -> Result<()> {
    if args.list {
        let pattern = args.function.join(" ");
        let pattern = (!pattern.is_empty()).then_some(pattern);
        let resolver = Resolver::load()?;
        for f in resolver.probeable(args.module.as_deref(), pattern.as_deref())? {
            println!("{}", f.label());
        }
        return Ok(());
    }
    if let Some(names) = args.del {
        if names.is_empty() && !args.all {
            return Err(Error::bad_argument(
                "--del needs probe names, or --all to remove every netprof probe",
            ));
        }
        for name in persistent::delete(&names, args.all)? {
            println!("removed netprof:{name}");
        }
        return Ok(());
    }
    let request = ProbeRequest::parse(&args.function)?;
    let added = persistent::add(&request, args.module.as_deref(), args.force)?;
    if let Some(note) = &added.note {
        eprintln!("netprof: {note}");
    }
    if args.verbose {
        let how = if added.in_one_write {
            "in one write"
        } else {
            "one at a time"
        };
        eprintln!(
            "netprof: {} probe(s) added through kprobe_events {how}; to attach a glob at once for one recording, use record -e 'kprobe:GLOB' -a (a multi-kprobe BPF link)",
            added.names.len()
        );
    }
    for name in &added.names {
        println!("added netprof:{name}   (record with: netprof record -e netprof:{name} -a -g)");
    }
    Ok(())
}
