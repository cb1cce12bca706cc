//! Where BPF programs are attached to tc the classic way (cls_bpf filters:
//! `tc filter add dev X ingress bpf da obj ...`, and what libbpf's
//! `bpf_tc_attach` does). Such attachments are no BPF link, so the kernel
//! tells them only through rtnetlink: one dump of filters per interface and
//! direction, read with the rust-netlink crates (the same ones the
//! `rtnetlink` crate is built on, used here without an async runtime).

use std::collections::HashMap;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// The hooks of clsact: ingress and egress. The older ingress qdisc (same
/// handle, ffff:) has only the first, and answers a dump of either with its
/// filters, so the qdisc's kind says which to ask.
const CLSACT_HOOKS: [(u16, &str); 2] = [
    (TcHandle::MIN_INGRESS, "ingress"),
    (TcHandle::MIN_EGRESS, "egress"),
];

/// A cls_bpf filter: its program, where, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcFilter {
    pub program: u32,
    /// `ingress` or `egress`.
    pub direction: &'static str,
    pub priority: u16,
    /// Attached with `da`: the program's return value is the tc action.
    pub direct_action: bool,
}

impl TcFilter {
    /// How `netprof bpf` shows it: `tc ingress on eth0 (cls_bpf, prio 1, da)`.
    pub fn describe(&self, interface: &str) -> String {
        format!(
            "tc {} on {interface} (cls_bpf, prio {}{})",
            self.direction,
            self.priority,
            if self.direct_action { ", da" } else { "" }
        )
    }
}

/// The cls_bpf filters on the interfaces in `ifindices`, with the interface
/// each is on; none when netlink cannot be asked (the listing is best
/// effort, as for XDP).
pub fn filters(ifindices: impl IntoIterator<Item = u32>) -> Vec<(u32, TcFilter)> {
    let Ok(socket) = open() else {
        return Vec::new();
    };
    let hooks = ingress_qdiscs(&socket);
    let mut found = Vec::new();
    for ifindex in ifindices {
        let directions = match hooks.get(&ifindex).map(String::as_str) {
            Some("clsact") => &CLSACT_HOOKS[..],
            Some("ingress") => &CLSACT_HOOKS[..1],
            _ => &[],
        };
        for &(minor, direction) in directions {
            let mut request = TcMessage::default();
            request.header.index = ifindex as i32;
            request.header.parent = TcHandle {
                major: TcHandle::CLSACT.major,
                minor,
            };
            found.extend(
                dump(&socket, RouteNetlinkMessage::GetTrafficFilter(request))
                    .into_iter()
                    .filter_map(|reply| match reply {
                        RouteNetlinkMessage::NewTrafficFilter(filter) => {
                            bpf_filter(filter, direction)
                        }
                        _ => None,
                    })
                    .map(|filter| (ifindex, filter)),
            );
        }
    }
    found
}

/// The kind (`clsact` or `ingress`) of each interface's qdisc hung at the
/// ingress parent (ffff:fff1, where both go), by interface index.
fn ingress_qdiscs(socket: &Socket) -> HashMap<u32, String> {
    dump(
        socket,
        RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()),
    )
    .into_iter()
    .filter_map(|reply| match reply {
        RouteNetlinkMessage::NewQueueDiscipline(qdisc)
            if qdisc.header.parent == TcHandle::INGRESS =>
        {
            let kind = qdisc.attributes.iter().find_map(|a| match a {
                TcAttribute::Kind(kind) => Some(kind.clone()),
                _ => None,
            })?;
            Some((qdisc.header.index as u32, kind))
        }
        _ => None,
    })
    .collect()
}

fn open() -> std::io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    // A reply that does not come is not waited for.
    rustix::net::sockopt::set_socket_timeout(
        &socket,
        rustix::net::sockopt::Timeout::Recv,
        Some(std::time::Duration::from_secs(1)),
    )?;
    Ok(socket)
}

/// The replies to one dump request.
fn dump(socket: &Socket, request: RouteNetlinkMessage) -> Vec<RouteNetlinkMessage> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(request));
    packet.finalize();
    let mut bytes = vec![0; packet.buffer_len()];
    packet.serialize(&mut bytes);
    if socket.send(&bytes, 0).is_err() {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut buffer = Vec::with_capacity(64 * 1024);
    loop {
        buffer.clear();
        if socket.recv(&mut buffer, 0).unwrap_or(0) == 0 {
            return found;
        }
        let mut rest = &buffer[..];
        while !rest.is_empty() {
            let Ok(message) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest) else {
                return found;
            };
            let length = (message.header.length as usize).next_multiple_of(4);
            match message.payload {
                NetlinkPayload::InnerMessage(reply) => found.push(reply),
                NetlinkPayload::Noop => {}
                // Done, an error (no such hook on this interface), or overrun.
                _ => return found,
            }
            if length == 0 || length > rest.len() {
                return found;
            }
            rest = &rest[length..];
        }
    }
}

/// The filter of `message`, if it is a cls_bpf filter with a program.
fn bpf_filter(message: TcMessage, direction: &'static str) -> Option<TcFilter> {
    let mut is_bpf = false;
    let mut program = None;
    let mut direct_action = false;
    for attribute in &message.attributes {
        match attribute {
            TcAttribute::Kind(kind) => is_bpf = kind == "bpf",
            TcAttribute::Options(options) => {
                for option in options {
                    match option {
                        TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => program = Some(*id),
                        TcOption::Bpf(TcFilterBpfOption::Flags(flags)) => {
                            direct_action = flags.contains(TcBpfFlags::DirectAction)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(TcFilter {
        program: program.filter(|_| is_bpf)?,
        direction,
        // The priority is the upper half of tcm_info.
        priority: (message.header.info >> 16) as u16,
        direct_action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cls_bpf_filter_message_is_read_and_others_are_not() {
        let mut message = TcMessage::default();
        message.header.info = (49152 << 16) | 0x0300;
        message.attributes = vec![
            TcAttribute::Kind("bpf".into()),
            TcAttribute::Options(vec![
                TcOption::Bpf(TcFilterBpfOption::ProgId(42)),
                TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
            ]),
        ];
        let filter = bpf_filter(message.clone(), "ingress").unwrap();
        assert_eq!(
            filter.describe("veth0"),
            "tc ingress on veth0 (cls_bpf, prio 49152, da)"
        );
        assert_eq!(filter.program, 42);
        message.attributes[0] = TcAttribute::Kind("u32".into());
        assert!(bpf_filter(message, "egress").is_none());
    }
}
