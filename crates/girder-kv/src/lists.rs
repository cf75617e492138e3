//! List operations (LPUSH, LRANGE, LMOVE, ...).
//!
//! Invariants: a list stored in the keyspace is never empty (the operation that removes
//! its last element removes the key); elements are owned copies, never slices of a
//! request buffer; modifying a list keeps the key's deadline, creating one sets none.
//!
//! A list is a [`BlockDeque`]: blocks of 128 elements, as Redis's quicklist is a list of
//! small listpacks. O(1) push and pop at both ends and O(1) indexing, and no push ever
//! reallocates the whole list (a `VecDeque` doubling under a ten-million-element queue
//! stalls the event loop for the copy). An element of up to 64 bytes is packed into its
//! block's buffer (its bytes and 8 bytes of position); a longer one is a shared `Bytes`.
//! Readers copy only the elements they return, never the whole list.

use crate::blocks::{BlockDeque, Element};
use crate::shard::Value;
use crate::{DbRef, Entry, KvError, Slot};
use bytes::Bytes;

/// A list of elements.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListValue {
    items: BlockDeque,
}

impl ListValue {
    /// Redis 7.0's name for the representation (`OBJECT ENCODING`): always `quicklist`.
    pub(crate) fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// A list of these elements, head first (a journal's replay).
    pub fn from_items(items: impl IntoIterator<Item = Bytes>) -> Self {
        Self {
            items: items.into_iter().map(Element::Owned).collect(),
        }
    }

    /// The elements, head first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.items.iter()
    }

    fn push(&mut self, end: End, item: Element<'_>) {
        match end {
            End::Left => self.items.push_front(item),
            End::Right => self.items.push_back(item),
        }
    }

    fn pop(&mut self, end: End) -> Option<Bytes> {
        match end {
            End::Left => self.items.pop_front(),
            End::Right => self.items.pop_back(),
        }
    }

    /// Pops up to `count` elements from `end`, in pop order.
    fn pop_many(&mut self, end: End, count: usize) -> Vec<Bytes> {
        let n = count.min(self.items.len());
        let popped = (0..n).map_while(|_| self.pop(end)).collect();
        self.release_spare();
        popped
    }

    /// Gives back memory once the list has shrunk: emptied blocks are freed as they
    /// empty; an end block or the block index shrunk to a quarter of its capacity is
    /// reallocated at twice its length (amortized O(1) per removed element).
    fn release_spare(&mut self) {
        self.items.release_spare();
    }
}

/// An end of a list: `LEFT` is the head (index 0), `RIGHT` the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The head.
    Left,
    /// The tail.
    Right,
}

/// What [`insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The key does not exist: nothing inserted.
    NoKey,
    /// The pivot is not in the list: nothing inserted.
    NoPivot,
    /// Inserted; the new length.
    Inserted(usize),
}

/// Options of [`pos`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PosOptions {
    /// Which match is the first reported: 1 the first from the head, -1 the first from
    /// the tail, 2 the second... Never 0.
    pub rank: i64,
    /// How many matches to report: `None` the first only, `Some(0)` all of them.
    pub count: Option<usize>,
    /// How many elements to scan at most; 0 scans the whole list.
    pub maxlen: usize,
}

fn list_of(entry: Option<&Entry>) -> Result<Option<&ListValue>, KvError> {
    match entry.map(|e| &e.value) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(KvError::WrongType),
    }
}

fn list_mut(entry: Option<&mut Entry>) -> Result<Option<&mut ListValue>, KvError> {
    match entry.map(|e| &mut e.value) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(KvError::WrongType),
    }
}

/// Runs `f` on the list at `slot`, if there is one, then removes the key if `f` emptied
/// the list.
fn modify<R>(
    slot: &mut Slot<'_>,
    f: impl FnOnce(&mut ListValue) -> R,
) -> Result<Option<R>, KvError> {
    let Some(list) = list_mut(slot.get())? else {
        return Ok(None);
    };
    let result = f(list);
    if list.items.is_empty() {
        slot.remove();
    }
    Ok(Some(result))
}

/// Resolves Redis's index convention (negative counts from the tail) to a position.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if index < 0 { len + index } else { index };
    (0..len)
        .contains(&i)
        .then(|| usize::try_from(i).ok())
        .flatten()
}

/// Resolves an inclusive `start..=stop` range as LRANGE and LTRIM do: negative indexes
/// count from the tail, the range is clamped to the list; `None` when it is empty.
fn resolve_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let n = i64::try_from(len).ok()?;
    let start = if start < 0 { n + start } else { start }.max(0);
    let stop = if stop < 0 { n + stop } else { stop };
    if start > stop || start >= n {
        return None;
    }
    let stop = stop.min(n - 1);
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}

/// LPUSH / RPUSH, or LPUSHX / RPUSHX with `only_if_exists`: pushes `elements` one by one
/// at `end` (so LPUSH reverses them). Returns the new length, 0 when `only_if_exists`
/// and the key is missing.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn push<E: AsRef<[u8]>>(
    db: &DbRef<'_>,
    key: &[u8],
    end: End,
    elements: &[E],
    only_if_exists: bool,
) -> Result<usize, KvError> {
    db.write(key, |slot| {
        let owned = elements.iter().map(|e| Element::Borrowed(e.as_ref()));
        if let Some(list) = list_mut(slot.get())? {
            for item in owned {
                list.push(end, item);
            }
            return Ok(list.items.len());
        }
        if only_if_exists {
            return Ok(0);
        }
        let mut list = ListValue::default();
        for item in owned {
            list.push(end, item);
        }
        let len = list.items.len();
        slot.put(Value::List(Box::new(list)), None);
        Ok(len)
    })
}

/// LPOP / RPOP: pops up to `count` elements from `end`. `None` when the key is missing.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn pop(
    db: &DbRef<'_>,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Bytes>>, KvError> {
    db.write(key, |slot| modify(slot, |list| list.pop_many(end, count)))
}

/// LLEN: 0 for a missing key.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn len(db: &DbRef<'_>, key: &[u8]) -> Result<usize, KvError> {
    db.read(key, |e| Ok(list_of(e)?.map_or(0, |l| l.items.len())))
}

/// LRANGE: the elements from `start` to `stop` inclusive (Redis index convention).
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn range(db: &DbRef<'_>, key: &[u8], start: i64, stop: i64) -> Result<Vec<Bytes>, KvError> {
    range_with(db, key, start, stop, |_, items| {
        items.map(Bytes::copy_from_slice).collect()
    })
}

/// LRANGE without copying the elements out: `f` gets the number of elements in the
/// range and the elements, head first, while the key's shard is locked (a front end
/// encodes its reply from them directly).
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn range_with<R>(
    db: &DbRef<'_>,
    key: &[u8],
    start: i64,
    stop: i64,
    f: impl FnOnce(usize, &mut dyn Iterator<Item = &[u8]>) -> R,
) -> Result<R, KvError> {
    db.read(key, |e| {
        let Some(list) = list_of(e)? else {
            return Ok(f(0, &mut std::iter::empty()));
        };
        Ok(match resolve_range(start, stop, list.items.len()) {
            Some((from, to)) => f(to - from + 1, &mut list.items.range(from..to + 1)),
            None => f(0, &mut std::iter::empty()),
        })
    })
}

/// LINDEX: the element at `index`, `None` if out of range or the key is missing.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn index(db: &DbRef<'_>, key: &[u8], index: i64) -> Result<Option<Bytes>, KvError> {
    db.read(key, |e| {
        Ok(list_of(e)?.and_then(|list| {
            resolve_index(index, list.items.len())
                .and_then(|i| list.items.get(i))
                .map(Bytes::copy_from_slice)
        }))
    })
}

/// LSET: replaces the element at `index`. `Ok(false)` when the index is out of range.
///
/// # Errors
/// [`KvError::NoSuchKey`] for a missing key; WRONGTYPE when it holds another type.
pub fn set(db: &DbRef<'_>, key: &[u8], index: i64, element: &[u8]) -> Result<bool, KvError> {
    db.write(key, |slot| {
        let list = list_mut(slot.get())?.ok_or(KvError::NoSuchKey)?;
        let Some(i) = resolve_index(index, list.items.len()) else {
            return Ok(false);
        };
        Ok(list.items.set(i, element))
    })
}

/// LREM: removes the first `count` occurrences of `element` from the head (`count` > 0),
/// from the tail (`count` < 0), or all of them (0). Returns how many were removed.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn rem(db: &DbRef<'_>, key: &[u8], count: i64, element: &[u8]) -> Result<usize, KvError> {
    let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let limit = if limit == 0 { usize::MAX } else { limit };
    db.write(key, |slot| {
        let removed = modify(slot, |list| {
            let removed = if count == 0 {
                remove_all(list, element)
            } else {
                remove_counted(list, count, limit, element)
            };
            if removed > 0 {
                list.release_spare();
            }
            removed
        })?;
        Ok(removed.unwrap_or(0))
    })
}

/// Matches LREM removes one by one (each shifting the shorter side of the list); more
/// than this many, and the list is filtered in one pass instead.
const FEW_MATCHES: usize = 16;

/// LREM with count 0: every match, in one pass.
fn remove_all(list: &mut ListValue, element: &[u8]) -> usize {
    let before = list.items.len();
    list.items.retain(|x| x != element);
    before - list.items.len()
}

/// LREM with a count: the first `limit` matches from the head (`count > 0`) or the
/// tail. As in Redis, the scan ends at the `limit`-th match, so removing one element near
/// an end of a long list costs little.
fn remove_counted(list: &mut ListValue, count: i64, limit: usize, element: &[u8]) -> usize {
    let len = list.items.len();
    let want = limit.min(FEW_MATCHES + 1);
    // Positions of the first `want` matches in scan order.
    let matches = list.items.iter().enumerate();
    let matches = matches.filter(|(_, x)| *x == element).map(|(i, _)| i);
    let found: Vec<usize> = if count > 0 {
        matches.take(want).collect()
    } else {
        matches.rev().take(want).collect()
    };
    if found.len() <= FEW_MATCHES {
        // Every match to remove is known: highest position first, so the lower ones
        // stay where they are.
        let mut found = found;
        found.sort_unstable_by(|a, b| b.cmp(a));
        for &i in &found {
            list.items.remove(i);
        }
        return found.len();
    }
    // Many matches: one pass. Matches at positions >= `first` are removed: from the
    // head that is every position, counted down by `left`; from the tail it is where the
    // `limit`-th match from the end sits.
    let first = if count < 0 {
        let mut seen = 0;
        let boundary = list.items.iter().rposition(|x| {
            seen += usize::from(x == element);
            seen == limit
        });
        boundary.unwrap_or(0)
    } else {
        0
    };
    let (mut at, mut left) = (0, limit);
    list.items.retain(|x| {
        let keep = at < first || left == 0 || x != element;
        at += 1;
        left -= usize::from(!keep);
        keep
    });
    len - list.items.len()
}

/// LTRIM: keeps only the elements from `start` to `stop` inclusive; removes the key when
/// nothing is left.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn trim(db: &DbRef<'_>, key: &[u8], start: i64, stop: i64) -> Result<(), KvError> {
    db.write(key, |slot| {
        modify(slot, |list| {
            match resolve_range(start, stop, list.items.len()) {
                Some((from, to)) => {
                    list.items.truncate(to + 1);
                    list.items.remove_front(from);
                    list.release_spare();
                }
                None => list.items.clear(),
            }
        })?;
        Ok(())
    })
}

/// LINSERT: inserts `element` before (or after) the first occurrence of `pivot`.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn insert(
    db: &DbRef<'_>,
    key: &[u8],
    before: bool,
    pivot: &[u8],
    element: &[u8],
) -> Result<InsertOutcome, KvError> {
    db.write(key, |slot| {
        let Some(list) = list_mut(slot.get())? else {
            return Ok(InsertOutcome::NoKey);
        };
        let Some(at) = list.items.iter().position(|x| x == pivot) else {
            return Ok(InsertOutcome::NoPivot);
        };
        let at = if before { at } else { at + 1 };
        list.items.insert(at, element);
        Ok(InsertOutcome::Inserted(list.items.len()))
    })
}

/// LPOS: the indexes (from the head) of the matches of `element` selected by `options`,
/// in scan order. Empty for a missing key.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn pos(
    db: &DbRef<'_>,
    key: &[u8],
    element: &[u8],
    options: PosOptions,
) -> Result<Vec<usize>, KvError> {
    // Redis negates a negative rank in a C long, where -LONG_MIN stays LONG_MIN: every
    // match then passes the rank test and the COUNT test never ends the scan. Girder
    // reproduces that rather than reporting nothing.
    let wrapped = options.rank == i64::MIN;
    let skip = if wrapped {
        0
    } else {
        options.rank.unsigned_abs() - 1
    };
    let limit = match options.count {
        None => 1,
        Some(0) => usize::MAX,
        Some(_) if wrapped => usize::MAX,
        Some(n) => n,
    };
    let scan = if options.maxlen == 0 {
        usize::MAX
    } else {
        options.maxlen
    };
    db.read(key, |e| {
        let Some(list) = list_of(e)? else {
            return Ok(Vec::new());
        };
        let len = list.items.len();
        let positions: Box<dyn Iterator<Item = usize>> = if options.rank < 0 {
            Box::new((0..len).rev())
        } else {
            Box::new(0..len)
        };
        let mut seen = 0u64;
        let mut found = Vec::new();
        for i in positions.take(scan) {
            if list.items.get(i) != Some(element) {
                continue;
            }
            seen += 1;
            if seen > skip {
                found.push(i);
                if found.len() == limit {
                    break;
                }
            }
        }
        Ok(found)
    })
}

/// LMOVE / RPOPLPUSH: pops from `from` of `source` and pushes to `to` of `destination`,
/// atomically. `None` when the source is missing. The same key may be both (a rotation).
///
/// # Errors
/// WRONGTYPE when either key holds another type (nothing is moved).
pub fn lmove(
    db: &DbRef<'_>,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
) -> Result<Option<Bytes>, KvError> {
    db.write_many(&[source, destination], |multi| {
        if list_of(multi.slot(source).get().map(|e| &*e))?.is_none() {
            return Ok(None);
        }
        list_of(multi.slot(destination).get().map(|e| &*e))?;
        let mut src = multi.slot(source);
        let item = modify(&mut src, |list| {
            let item = list.pop(from).expect("stored lists are never empty");
            if source == destination {
                list.push(to, Element::Owned(item.clone()));
            } else {
                // A queue drained by LMOVE gives back memory as one drained by LPOP does.
                list.release_spare();
            }
            item
        })?
        .expect("checked above");
        if source != destination {
            let mut dst = multi.slot(destination);
            match list_mut(dst.get())? {
                Some(list) => list.push(to, Element::Owned(item.clone())),
                None => {
                    let mut list = ListValue::default();
                    list.push(to, Element::Owned(item.clone()));
                    dst.put(Value::List(Box::new(list)), None);
                }
            }
        }
        Ok(Some(item))
    })
}

/// LMPOP: pops up to `count` elements from `end` of the first of `keys` that exists, and
/// returns its position in `keys` with the elements. `None` when none exists.
///
/// # Errors
/// WRONGTYPE when a key before the first list holds another type.
pub fn mpop(
    db: &DbRef<'_>,
    keys: &[&[u8]],
    end: End,
    count: usize,
) -> Result<Option<(usize, Vec<Bytes>)>, KvError> {
    db.write_many(keys, |multi| {
        for (i, key) in keys.iter().enumerate() {
            let mut slot = multi.slot(key);
            if let Some(popped) = modify(&mut slot, |list| list.pop_many(end, count))? {
                return Ok(Some((i, popped)));
            }
        }
        Ok(None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{keys, strings, Keyspace, ManualClock};
    use proptest::prelude::*;
    use std::sync::Arc;

    const T0: u64 = 1_800_000_000_000;

    fn keyspace() -> (Arc<ManualClock>, Keyspace) {
        let clock = Arc::new(ManualClock::new(T0));
        (clock.clone(), Keyspace::new(clock, 1 << 20))
    }

    fn all(db: &DbRef<'_>, key: &[u8]) -> Vec<Bytes> {
        range(db, key, 0, -1).unwrap()
    }

    #[test]
    fn push_order_and_lengths() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        assert_eq!(push(&db, b"l", End::Left, &["a", "b", "c"], false), Ok(3));
        assert_eq!(push(&db, b"l", End::Right, &["d"], false), Ok(4));
        assert_eq!(all(&db, b"l"), ["c", "b", "a", "d"]);
        assert_eq!(push(&db, b"none", End::Left, &["x"], true), Ok(0));
        assert_eq!(keys::exists(&db, &[b"none"]), 0);
        assert_eq!(keys::encoding(&db, b"l"), Some("quicklist"));
    }

    #[test]
    fn wrong_type_is_reported_and_nothing_changes() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        strings::set(&db, b"s", b"v", Default::default()).unwrap();
        push(&db, b"l", End::Right, &["a"], false).unwrap();
        assert_eq!(
            push(&db, b"s", End::Left, &["x"], false),
            Err(KvError::WrongType)
        );
        assert_eq!(
            lmove(&db, b"l", b"s", End::Left, End::Left),
            Err(KvError::WrongType)
        );
        assert_eq!(all(&db, b"l"), ["a"], "source untouched");
        assert_eq!(
            mpop(&db, &[b"missing", b"s", b"l"], End::Left, 1),
            Err(KvError::WrongType)
        );
        assert_eq!(strings::get(&db, b"s").unwrap().unwrap(), "v");
    }

    #[test]
    fn removing_the_last_element_removes_the_key() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        push(&db, b"l", End::Right, &["a", "b"], false).unwrap();
        assert_eq!(pop(&db, b"l", End::Left, 5).unwrap().unwrap(), ["a", "b"]);
        assert_eq!(keys::exists(&db, &[b"l"]), 0);
        push(&db, b"l", End::Right, &["a", "a"], false).unwrap();
        assert_eq!(rem(&db, b"l", 0, b"a"), Ok(2));
        assert_eq!(keys::exists(&db, &[b"l"]), 0);
        push(&db, b"l", End::Right, &["a"], false).unwrap();
        trim(&db, b"l", 1, 0).unwrap();
        assert_eq!(keys::exists(&db, &[b"l"]), 0);
        push(&db, b"l", End::Right, &["a"], false).unwrap();
        assert_eq!(
            lmove(&db, b"l", b"m", End::Left, End::Right),
            Ok(Some(Bytes::from("a")))
        );
        assert_eq!(keys::exists(&db, &[b"l"]), 0);
        assert_eq!(
            mpop(&db, &[b"m"], End::Left, 1),
            Ok(Some((0, vec![Bytes::from("a")])))
        );
        assert_eq!(keys::exists(&db, &[b"m"]), 0);
    }

    #[test]
    fn modification_keeps_the_deadline() {
        let (clock, ks) = keyspace();
        {
            let db = ks.db(0).unwrap();
            push(&db, b"l", End::Right, &["a", "b", "c"], false).unwrap();
            keys::expire_at(&db, b"l", T0 + 1000, Default::default());
            push(&db, b"l", End::Left, &["z"], false).unwrap();
            set(&db, b"l", 0, b"y").unwrap();
            pop(&db, b"l", End::Right, 1).unwrap();
            lmove(&db, b"l", b"l", End::Left, End::Right).unwrap();
            assert_eq!(keys::ttl(&db, b"l"), keys::Ttl::Remaining(1000));
        }
        clock.advance(1001);
        let db = ks.db(0).unwrap();
        assert_eq!(len(&db, b"l"), Ok(0), "expired with its deadline");
    }

    #[test]
    fn rotation_on_one_key() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        push(&db, b"l", End::Right, &["a", "b", "c"], false).unwrap();
        lmove(&db, b"l", b"l", End::Right, End::Left).unwrap();
        assert_eq!(all(&db, b"l"), ["c", "a", "b"]);
        push(&db, b"one", End::Right, &["x"], false).unwrap();
        lmove(&db, b"one", b"one", End::Left, End::Right).unwrap();
        assert_eq!(all(&db, b"one"), ["x"]);
    }

    #[test]
    fn pos_ranks_counts_and_maxlen() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        push(&db, b"l", End::Right, &["a", "b", "a", "c", "a"], false).unwrap();
        let opts = |rank, count, maxlen| PosOptions {
            rank,
            count,
            maxlen,
        };
        assert_eq!(pos(&db, b"l", b"a", opts(1, None, 0)), Ok(vec![0]));
        assert_eq!(pos(&db, b"l", b"a", opts(-1, None, 0)), Ok(vec![4]));
        assert_eq!(pos(&db, b"l", b"a", opts(2, Some(0), 0)), Ok(vec![2, 4]));
        assert_eq!(pos(&db, b"l", b"a", opts(-2, Some(1), 0)), Ok(vec![2]));
        assert_eq!(pos(&db, b"l", b"a", opts(1, Some(0), 3)), Ok(vec![0, 2]));
        assert_eq!(pos(&db, b"l", b"a", opts(4, Some(0), 0)), Ok(vec![]));
        assert_eq!(
            pos(&db, b"l", b"a", opts(i64::MIN, Some(1), 0)),
            Ok(vec![4, 2, 0])
        );
        assert_eq!(pos(&db, b"l", b"a", opts(i64::MAX, Some(0), 0)), Ok(vec![]));
    }

    #[test]
    fn drained_queue_releases_memory() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        let items: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        push(&db, b"q", End::Right, &items, false).unwrap();
        pop(&db, b"q", End::Left, 9_990).unwrap();
        let capacity = db.read(b"q", |e| match &e.unwrap().value {
            Value::List(l) => l.items.heap_bytes(),
            _ => unreachable!(),
        });
        assert!(capacity < 1000, "{capacity} bytes kept after draining");
        // Drained one element at a time by LMOVE, likewise.
        push(&db, b"m", End::Right, &items, false).unwrap();
        for _ in 0..9_990 {
            lmove(&db, b"m", b"dst", End::Left, End::Right).unwrap();
        }
        let capacity = db.read(b"m", |e| match &e.unwrap().value {
            Value::List(l) => l.items.heap_bytes(),
            _ => unreachable!(),
        });
        assert!(
            capacity < 1000,
            "{capacity} bytes kept after draining by LMOVE"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(End, Vec<u8>),
        Pop(End, usize),
        Rem(i64, u8),
        Trim(i64, i64),
        Set(i64, u8),
        Insert(bool, u8, u8),
        Move(End, End),
    }

    fn op() -> impl Strategy<Value = Op> {
        let end = prop_oneof![Just(End::Left), Just(End::Right)];
        prop_oneof![
            (end.clone(), prop::collection::vec(0u8..4, 1..4)).prop_map(|(e, v)| Op::Push(e, v)),
            (end.clone(), 0usize..4).prop_map(|(e, n)| Op::Pop(e, n)),
            (-3i64..4, 0u8..4).prop_map(|(c, x)| Op::Rem(c, x)),
            (-8i64..8, -8i64..8).prop_map(|(a, b)| Op::Trim(a, b)),
            (-8i64..8, 0u8..4).prop_map(|(i, x)| Op::Set(i, x)),
            (any::<bool>(), 0u8..4, 0u8..4).prop_map(|(b, p, x)| Op::Insert(b, p, x)),
            (end.clone(), end).prop_map(|(a, b)| Op::Move(a, b)),
        ]
    }

    /// The model's LRANGE: the positions between the two indexes (negative ones counted
    /// from the end), written as a filter rather than as clamping arithmetic.
    fn model_range(model: &[u8], start: i64, stop: i64) -> Vec<u8> {
        let len = model.len() as i64;
        let (s, e) = (
            if start < 0 { len + start } else { start },
            if stop < 0 { len + stop } else { stop },
        );
        (0..len)
            .filter(|k| s <= *k && *k <= e)
            .map(|k| model[k as usize])
            .collect()
    }

    fn model_index(i: i64, len: usize) -> Option<usize> {
        let len = len as i64;
        let i = if i < 0 { len + i } else { i };
        (0..len).contains(&i).then_some(i as usize)
    }

    proptest! {
        /// Every operation agrees with a plain `Vec` model, and an empty list never
        /// stays in the keyspace.
        #[test]
        fn matches_a_vec_model(ops in prop::collection::vec(op(), 1..60)) {
            let (_, ks) = keyspace();
            let db = ks.db(0).unwrap();
            let mut model: Vec<u8> = Vec::new();
            let b = |x: u8| Bytes::from(vec![x]);
            for op in ops {
                match op {
                    Op::Push(end, items) => {
                        let elements: Vec<[u8; 1]> = items.iter().map(|x| [*x]).collect();
                        let got = push(&db, b"l", end, &elements, false).unwrap();
                        for x in items {
                            match end { End::Left => model.insert(0, x), End::Right => model.push(x) }
                        }
                        prop_assert_eq!(got, model.len());
                    }
                    Op::Pop(end, n) => {
                        let got = pop(&db, b"l", end, n).unwrap();
                        let k = n.min(model.len());
                        let want: Vec<u8> = match end {
                            End::Left => model.drain(..k).collect(),
                            End::Right => model.drain(model.len() - k..).rev().collect(),
                        };
                        if want.is_empty() && model.is_empty() && got.is_none() { continue; }
                        prop_assert_eq!(got.unwrap(), want.into_iter().map(b).collect::<Vec<_>>());
                    }
                    Op::Rem(count, x) => {
                        let got = rem(&db, b"l", count, &[x]).unwrap();
                        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
                        let mut removed = 0;
                        if count < 0 {
                            for i in (0..model.len()).rev() {
                                if removed < limit && model[i] == x { model.remove(i); removed += 1; }
                            }
                        } else {
                            let mut i = 0;
                            while i < model.len() {
                                if removed < limit && model[i] == x { model.remove(i); removed += 1; } else { i += 1; }
                            }
                        }
                        prop_assert_eq!(got, removed);
                    }
                    Op::Trim(a, z) => {
                        trim(&db, b"l", a, z).unwrap();
                        model = model_range(&model, a, z);
                    }
                    Op::Set(i, x) => {
                        let got = set(&db, b"l", i, &[x]);
                        if model.is_empty() {
                            prop_assert_eq!(got, Err(KvError::NoSuchKey));
                        } else if let Some(i) = model_index(i, model.len()) {
                            model[i] = x;
                            prop_assert_eq!(got, Ok(true));
                        } else {
                            prop_assert_eq!(got, Ok(false));
                        }
                    }
                    Op::Insert(before, p, x) => {
                        let got = insert(&db, b"l", before, &[p], &[x]).unwrap();
                        let want = if model.is_empty() {
                            InsertOutcome::NoKey
                        } else if let Some(at) = model.iter().position(|y| *y == p) {
                            model.insert(if before { at } else { at + 1 }, x);
                            InsertOutcome::Inserted(model.len())
                        } else {
                            InsertOutcome::NoPivot
                        };
                        prop_assert_eq!(got, want);
                    }
                    Op::Move(from, to) => {
                        let got = lmove(&db, b"l", b"l", from, to).unwrap();
                        if model.is_empty() {
                            prop_assert_eq!(got, None);
                        } else {
                            let x = match from { End::Left => model.remove(0), End::Right => model.pop().unwrap() };
                            match to { End::Left => model.insert(0, x), End::Right => model.push(x) }
                            prop_assert_eq!(got, Some(b(x)));
                        }
                    }
                }
                prop_assert_eq!(all(&db, b"l"), model.iter().map(|x| b(*x)).collect::<Vec<_>>());
                prop_assert_eq!(keys::exists(&db, &[b"l"]), usize::from(!model.is_empty()));
                for i in -7i64..7 {
                    prop_assert_eq!(index(&db, b"l", i).unwrap(), model_index(i, model.len()).map(|i| b(model[i])));
                    for j in -7i64..7 {
                        let want: Vec<Bytes> = model_range(&model, i, j).into_iter().map(b).collect();
                        prop_assert_eq!(range(&db, b"l", i, j).unwrap(), want);
                    }
                }
            }
        }
    }
}
