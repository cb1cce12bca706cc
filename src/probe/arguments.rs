//! Probe arguments named the way kernel developers think of them: a
//! parameter's name (`count`) or a field behind a pointer (`skb->len`).
//!
//! Kernels from 6.6 resolve such names in kprobe_events themselves
//! (CONFIG_PROBE_EVENTS_BTF_ARGS). For older ones, Debian 12's 6.1 among
//! them, netprof writes them in the fetch-arg syntax every kernel takes,
//! from the function's BTF: `count` becomes `count=$arg3:x64`, `skb->len`
//! becomes `len=+112($arg1):x32`.

use btf_rs::{Btf, BtfType, Type};

use super::Function;
use crate::error::{Error, Result};
use crate::sys::tracefs::Tracefs;

/// Arguments as kprobe_events takes them, and what netprof did to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arguments {
    pub fetch: Vec<String>,
    /// How names were resolved, when netprof resolved them.
    pub note: Option<String>,
}

/// The arguments of a probe on `function`, names resolved through BTF where
/// the kernel cannot resolve them.
pub fn resolve(function: &Function, arguments: &[String]) -> Result<Arguments> {
    let named: Vec<&String> = arguments.iter().filter(|a| is_named(a)).collect();
    if named.is_empty() || kernel_resolves_names() {
        return Ok(Arguments {
            fetch: arguments.to_vec(),
            note: None,
        });
    }
    let btf = function_btf(function)?;
    let params = parameters(&btf, &function.name)?;
    let fetch = arguments
        .iter()
        .map(|a| match is_named(a) {
            true => translate(&btf, &params, a),
            false => Ok(a.clone()),
        })
        .collect::<Result<Vec<_>>>()?;
    let note = format!(
        "this kernel's kprobe_events takes no argument names (Linux 6.6 added them); netprof resolved \
         them from BTF: {}",
        fetch
            .iter()
            .zip(arguments)
            .filter(|(_, a)| is_named(a))
            .map(|(f, _)| f.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(Arguments {
        fetch,
        note: Some(note),
    })
}

/// Whether the kernel takes BTF names in kprobe_events: its tracefs README
/// then documents `<argname>`.
fn kernel_resolves_names() -> bool {
    Tracefs::get()
        .ok()
        .and_then(|t| std::fs::read_to_string(t.file("README")).ok())
        .is_some_and(|readme| readme.contains("<argname>"))
}

/// `[LABEL=]NAME[->FIELD|.FIELD]...`: a name, not a fetch-arg such as
/// `$arg3`, `%di`, `@sym` or `+8($arg1)`.
fn is_named(argument: &str) -> bool {
    let expression = argument.split_once('=').map_or(argument, |(_, e)| e);
    let (expression, _) = expression.split_once(':').unwrap_or((expression, ""));
    expression
        .split("->")
        .flat_map(|part| part.split('.'))
        .all(|word| {
            word.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// The BTF describing `function`: vmlinux's, or its module's on top of it.
fn function_btf(function: &Function) -> Result<Btf> {
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        Error::unsupported(format!(
            "argument names need BTF, and {what} cannot be read ({e}); name arguments by position \
             instead (`len=$arg3`)"
        ))
    };
    let vmlinux = "/sys/kernel/btf/vmlinux";
    let base = Btf::from_file(vmlinux).map_err(|e| unavailable(vmlinux, &e))?;
    match &function.module {
        None => Ok(base),
        Some(module) => {
            let path = format!("/sys/kernel/btf/{module}");
            Btf::from_split_file(&path, &base).map_err(|e| unavailable(&path, &e))
        }
    }
}

/// Each parameter of `function`: its name and type id.
fn parameters(btf: &Btf, function: &str) -> Result<Vec<(String, u32)>> {
    let missing = || {
        Error::not_found(format!(
            "{function} has no BTF description (inlined, or its module was built without BTF); name \
             arguments by position instead (`len=$arg3`)"
        ))
    };
    let func = btf
        .resolve_types_by_name(function)
        .map_err(|_| missing())?
        .into_iter()
        .find_map(|t| match t {
            Type::Func(f) => Some(f),
            _ => None,
        })
        .ok_or_else(missing)?;
    let Ok(Type::FuncProto(proto)) = btf.resolve_chained_type(&func) else {
        return Err(missing());
    };
    Ok(proto
        .parameters
        .iter()
        .filter(|p| !p.is_variadic())
        .map(|p| {
            let name = btf.resolve_name(p).unwrap_or_default();
            (name, p.get_type_id().unwrap_or(0))
        })
        .collect())
}

/// Where a value is fetched from as the expression is walked.
enum Place {
    /// A register value: an argument.
    Value(String),
    /// Memory at `offset` from the address `base` holds.
    Memory { base: String, offset: u32 },
}

impl Place {
    fn fetch(&self) -> String {
        match self {
            Place::Value(v) => v.clone(),
            Place::Memory { base, offset } => format!("+{offset}({base})"),
        }
    }
}

/// `[LABEL=]NAME[->FIELD|.FIELD]...[:TYPE]` as `LABEL=FETCHARG:TYPE`.
fn translate(btf: &Btf, params: &[(String, u32)], argument: &str) -> Result<String> {
    let (label, rest) = match argument.split_once('=') {
        Some((label, rest)) => (Some(label), rest),
        None => (None, argument),
    };
    let (expression, given_type) = match rest.split_once(':') {
        Some((e, t)) => (e, Some(t)),
        None => (rest, None),
    };
    let bad = |why: String| Error::bad_argument(format!("argument '{argument}': {why}"));
    let mut steps = split_steps(expression);
    let (first, _) = steps.remove(0);
    let (position, (_, mut type_id)) = params
        .iter()
        .enumerate()
        .find(|(_, (name, _))| name == first)
        .ok_or_else(|| {
            let names: Vec<&str> = params.iter().map(|p| p.0.as_str()).collect();
            bad(format!(
                "no parameter '{first}'; the function takes {}",
                names.join(", ")
            ))
        })?;
    let mut place = Place::Value(format!("$arg{}", position + 1));
    let mut last = first;
    for (field, through_pointer) in steps {
        let mut ty = resolved(btf, type_id)?;
        if through_pointer {
            let Type::Ptr(pointer) = ty else {
                return Err(bad(format!(
                    "'{last}' is not a pointer, so '->{field}' cannot follow it"
                )));
            };
            ty = resolved(btf, pointer.get_type_id().unwrap_or(0))?;
            place = Place::Memory {
                base: place.fetch(),
                offset: 0,
            };
        }
        let (offset, member_type) = member(btf, &ty, field)
            .ok_or_else(|| bad(format!("'{last}' has no field '{field}'")))?;
        place = match place {
            Place::Memory { base, offset: at } => Place::Memory {
                base,
                offset: at + offset,
            },
            Place::Value(_) => {
                return Err(bad(format!(
                    "'{last}' is passed by value; only fields behind pointers (->) can be read"
                )))
            }
        };
        type_id = member_type;
        last = field;
    }
    let fetch_type = match given_type {
        Some(t) => t.to_string(),
        None => fetch_type(&resolved(btf, type_id)?).ok_or_else(|| {
            bad(format!(
                "'{last}' is a struct, union or array; name one of its fields"
            ))
        })?,
    };
    Ok(format!(
        "{}={}:{fetch_type}",
        label.unwrap_or(last),
        place.fetch()
    ))
}

/// `a->b.c` as `[("a", false), ("b", true), ("c", false)]`: each name, and
/// whether a pointer is followed to reach it.
fn split_steps(expression: &str) -> Vec<(&str, bool)> {
    let mut steps = Vec::new();
    for (i, part) in expression.split("->").enumerate() {
        for (j, name) in part.split('.').enumerate() {
            steps.push((name, i > 0 && j == 0));
        }
    }
    steps
}

/// The type `id` names, through typedefs and qualifiers.
fn resolved(btf: &Btf, mut id: u32) -> Result<Type> {
    loop {
        let ty = btf.resolve_type_by_id(id).map_err(|e| {
            Error::corrupt_input(format!("the kernel's BTF is unreadable here ({e})"))
        })?;
        match &ty {
            Type::Typedef(_)
            | Type::Volatile(_)
            | Type::Const(_)
            | Type::Restrict(_)
            | Type::TypeTag(_) => id = ty.as_btf_type().and_then(|t| t.get_type_id()).unwrap_or(0),
            _ => return Ok(ty),
        }
    }
}

/// The byte offset and type of `field` in a struct or union, looked for in
/// its anonymous members too.
fn member(btf: &Btf, ty: &Type, field: &str) -> Option<(u32, u32)> {
    let (Type::Struct(s) | Type::Union(s)) = ty else {
        return None;
    };
    for m in &s.members {
        if m.bitfield_size().is_some_and(|bits| bits > 0) {
            continue;
        }
        let name = btf.resolve_name(m).unwrap_or_default();
        let offset = m.bit_offset() / 8;
        let type_id = m.get_type_id()?;
        if name == field {
            return Some((offset, type_id));
        }
        if name.is_empty() {
            if let Some((inner, id)) = member(btf, &resolved(btf, type_id).ok()?, field) {
                return Some((offset + inner, id));
            }
        }
    }
    None
}

/// How kprobe_events should read a value of type `ty`: as kernels that
/// resolve names themselves do (signed integers in decimal, unsigned ones
/// and pointers in hex, enums as s32), so that a probe prints the same on
/// every kernel.
fn fetch_type(ty: &Type) -> Option<String> {
    Some(match ty {
        Type::Int(i) => format!("{}{}", if i.is_signed() { 's' } else { 'x' }, 8 * i.size()),
        Type::Enum(_) => "s32".into(),
        Type::Enum64(_) => "s64".into(),
        Type::Ptr(_) => "x64".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_fetch_args_are_told_apart() {
        for named in ["count", "len=skb->len", "skb->dev.mtu", "count:x64"] {
            assert!(is_named(named), "{named}");
        }
        for fetch in [
            "len=$arg3",
            "%di",
            "x=+8($arg1):u32",
            "@jiffies",
            "$retval",
            "s=\"x\"",
        ] {
            assert!(!is_named(fetch), "{fetch}");
        }
        assert_eq!(
            split_steps("skb->dev.mtu"),
            [("skb", false), ("dev", true), ("mtu", false)]
        );
    }
}
