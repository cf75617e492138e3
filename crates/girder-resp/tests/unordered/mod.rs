//! Comparing replies whose order (or choice of elements) Redis leaves unspecified, for
//! the `differential_hashes` and `differential_sets` test binaries. The common harness
//! compares raw bytes; these helpers parse the replies first and compare them as sets or
//! check the properties a random reply must have.
#![allow(dead_code)]

use crate::common::{Pair, Raw};
use std::collections::{BTreeMap, BTreeSet};

/// A parsed RESP2/RESP3 reply.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum R {
    /// `+`, `-`, `:`, `_`, `,`, `#`, `(`: the raw line, type byte included.
    Line(Vec<u8>),
    /// `$`: `None` for `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*`, `~`, `>`, `%` (flattened) with the type byte; `None` for `*-1`.
    Agg(u8, Option<Vec<R>>),
}

impl R {
    /// Parses one whole reply.
    pub fn parse(raw: &[u8]) -> R {
        let mut at = 0;
        let r = parse_at(raw, &mut at);
        assert_eq!(at, raw.len(), "trailing bytes in {raw:?}");
        r
    }

    /// The elements of an aggregate.
    pub fn items(&self) -> &[R] {
        match self {
            R::Agg(_, Some(items)) => items,
            other => panic!("not an aggregate: {other:?}"),
        }
    }

    /// The bytes of a bulk string.
    pub fn bytes(&self) -> &[u8] {
        match self {
            R::Bulk(Some(b)) => b,
            other => panic!("not a bulk string: {other:?}"),
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, R::Line(l) if l.first() == Some(&b'-'))
    }

    /// The same reply with the elements of its (top-level) aggregate sorted; `chunk` 2
    /// sorts field/value pairs of a flat array.
    pub fn sorted(&self, chunk: usize) -> R {
        match self {
            R::Agg(t, Some(items)) => {
                let mut groups: Vec<Vec<R>> = items.chunks(chunk).map(<[R]>::to_vec).collect();
                groups.sort();
                R::Agg(*t, Some(groups.into_iter().flatten().collect()))
            }
            other => other.clone(),
        }
    }
}

fn line(raw: &[u8], at: &mut usize) -> Vec<u8> {
    let end = raw[*at..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("line ends")
        + *at;
    let l = raw[*at..end].to_vec();
    *at = end + 2;
    l
}

fn parse_at(raw: &[u8], at: &mut usize) -> R {
    let kind = raw[*at];
    let l = line(raw, at);
    let n = || -> i64 { std::str::from_utf8(&l[1..]).unwrap().parse().unwrap() };
    match kind {
        b'$' | b'=' | b'!' => {
            let len = n();
            if len < 0 {
                return R::Bulk(None);
            }
            let len = len as usize;
            let b = raw[*at..*at + len].to_vec();
            *at += len + 2;
            R::Bulk(Some(b))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let len = n();
            if len < 0 {
                return R::Agg(kind, None);
            }
            let count = if kind == b'%' { len * 2 } else { len };
            R::Agg(kind, Some((0..count).map(|_| parse_at(raw, at)).collect()))
        }
        _ => R::Line(l),
    }
}

/// Sends `cmd` to one side and parses the reply.
pub fn call(side: &mut Raw, cmd: &[Vec<u8>]) -> R {
    R::parse(&side.call(cmd))
}

/// Owned arguments.
pub fn argv(a: &[&str]) -> Vec<Vec<u8>> {
    a.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn show(cmd: &[Vec<u8>]) -> Vec<String> {
    cmd.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Sends `cmd` to both and asserts the replies are equal once their top-level elements
/// are sorted (in groups of `chunk`: 2 for field/value pairs). Returns Redis's reply.
pub fn check_unordered(p: &mut Pair, cmd: &[Vec<u8>], chunk: usize) -> R {
    let g = call(&mut p.girder, cmd).sorted(chunk);
    let r = call(&mut p.redis, cmd).sorted(chunk);
    assert_eq!(
        g,
        r,
        "reply to {:?} differs (left: Girder, right: Redis)",
        show(cmd)
    );
    r
}

/// Members of a set on Redis's side.
pub fn redis_members(p: &mut Pair, key: &str) -> BTreeSet<Vec<u8>> {
    let r = call(&mut p.redis, &argv(&["SMEMBERS", key]));
    if r.is_error() {
        return BTreeSet::new();
    }
    r.items().iter().map(|m| m.bytes().to_vec()).collect()
}

/// Fields and values of a hash on Redis's side.
pub fn redis_fields(p: &mut Pair, key: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let r = call(&mut p.redis, &argv(&["HGETALL", key]));
    if r.is_error() {
        return BTreeMap::new();
    }
    r.items()
        .chunks(2)
        .map(|c| (c[0].bytes().to_vec(), c[1].bytes().to_vec()))
        .collect()
}

/// What a random reply picks from.
pub enum Universe {
    /// Set members.
    Members(BTreeSet<Vec<u8>>),
    /// Hash fields and values.
    Fields(BTreeMap<Vec<u8>, Vec<u8>>),
}

impl Universe {
    fn len(&self) -> usize {
        match self {
            Universe::Members(m) => m.len(),
            Universe::Fields(f) => f.len(),
        }
    }

    /// Asserts that `pick` (a bulk, a `[field, value]` array, or a pair of bulks) belongs.
    fn assert_holds(&self, pick: &[R], cmd: &[String]) {
        match (self, pick) {
            (Universe::Members(m), [x]) => {
                assert!(m.contains(x.bytes()), "{cmd:?}: {x:?} is not a member")
            }
            (Universe::Fields(f), [k]) => {
                assert!(f.contains_key(k.bytes()), "{cmd:?}: {k:?} is not a field")
            }
            (Universe::Fields(f), [k, v]) => assert_eq!(
                f.get(k.bytes()).map(Vec::as_slice),
                Some(v.bytes()),
                "{cmd:?}: wrong pair"
            ),
            _ => panic!("{cmd:?}: unexpected pick {pick:?}"),
        }
    }
}

/// Sends a random-reply command (SRANDMEMBER, HRANDFIELD, SPOP) to both and checks that
/// the replies have the same shape and size, that Girder's picks come from `universe`
/// (the key's content before the command), are distinct when `distinct`, and are all of
/// it when the count covers it. Errors and nulls must match byte for byte. Returns both
/// replies (Girder, Redis).
pub fn check_random(
    p: &mut Pair,
    cmd: &[Vec<u8>],
    universe: &Universe,
    distinct: bool,
    pairs: bool,
) -> (R, R) {
    let g = call(&mut p.girder, cmd);
    let r = call(&mut p.redis, cmd);
    let shown = show(cmd);
    match (&g, &r) {
        (R::Agg(tg, Some(ig)), R::Agg(tr, Some(ir))) => {
            assert_eq!((tg, ig.len()), (tr, ir.len()), "{shown:?}: shape differs");
            let nested = matches!(ig.first(), Some(R::Agg(..)));
            let picks: Vec<Vec<R>> = if pairs && !nested {
                ig.chunks(2).map(<[R]>::to_vec).collect()
            } else {
                ig.iter()
                    .map(|x| match x {
                        // RESP3 HRANDFIELD WITHVALUES: nested [field, value].
                        R::Agg(_, Some(kv)) => kv.clone(),
                        other => vec![other.clone()],
                    })
                    .collect()
            };
            for pick in &picks {
                universe.assert_holds(pick, &shown);
            }
            if distinct {
                let set: BTreeSet<&R> = picks.iter().map(|p| &p[0]).collect();
                assert_eq!(set.len(), picks.len(), "{shown:?}: repeated picks");
                if picks.len() == universe.len() {
                    assert_eq!(g.sorted(1), r.sorted(1), "{shown:?}: whole content");
                }
            }
        }
        (R::Bulk(Some(b)), R::Bulk(Some(_))) => {
            universe.assert_holds(&[R::Bulk(Some(b.clone()))], &shown)
        }
        _ => assert_eq!(
            g, r,
            "reply to {shown:?} differs (left: Girder, right: Redis)"
        ),
    }
    (g, r)
}

/// Iterates HSCAN/SSCAN to the end on one side (`cmd` is `[name, key]`, `options`
/// follow the cursor); returns the sorted, deduplicated items (chunks of `chunk`).
pub fn scan_all(side: &mut Raw, cmd: &[&str], options: &[&str], chunk: usize) -> BTreeSet<Vec<R>> {
    let mut cursor = "0".to_owned();
    let mut seen = BTreeSet::new();
    for _ in 0..100_000 {
        let mut args = argv(cmd);
        args.push(cursor.clone().into_bytes());
        args.extend(argv(options));
        let r = call(side, &args);
        if r.is_error() {
            seen.insert(vec![r]);
            return seen;
        }
        let [next, items] = r.items() else {
            panic!("scan reply {r:?}")
        };
        seen.extend(items.items().chunks(chunk).map(<[R]>::to_vec));
        cursor = String::from_utf8(next.bytes().to_vec()).unwrap();
        if cursor == "0" {
            return seen;
        }
    }
    panic!("scan did not finish")
}

/// Full scans on both sides return the same items.
pub fn check_scan(p: &mut Pair, cmd: &[&str], options: &[&str], chunk: usize) {
    let g = scan_all(&mut p.girder, cmd, options, chunk);
    let r = scan_all(&mut p.redis, cmd, options, chunk);
    assert_eq!(
        g, r,
        "full {cmd:?} {options:?} differs (left: Girder, right: Redis)"
    );
}
