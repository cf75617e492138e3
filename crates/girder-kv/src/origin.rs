//! What a write is journaled as: the command that made it, or the state it left.
//!
//! A front end runs each command inside [`run`], naming the command's arguments and
//! whether replaying them redoes exactly what they did ("replayable": every keyspace
//! access of the command happens in one `write`/`write_many` call, so all it reads is
//! locked while it is journaled, and nothing in it is random). When the keyspace
//! journals every write ([`crate::Keyspace::set_journal_all`]), the one call that changed
//! something is journaled as the command, under that call's locks: a SET costs a copy of
//! its arguments, not an encoding of the value. Anything else — a command that is not
//! replayable, a second call of one that claimed to be, a write with no command around
//! it (a blocked client served by someone else's push) — is journaled as the state it
//! left: each changed key's whole value, or its deletion.
//!
//! The arguments are kept in a thread-local for the duration of the command (a command
//! never awaits between its keyspace calls, so it starts and ends on one thread).

use bytes::Bytes;
use std::cell::RefCell;

#[derive(Default)]
struct State {
    /// Inside a command.
    active: bool,
    args: Vec<Bytes>,
    replayable: bool,
    /// Write calls that changed something so far.
    writes: u32,
}

thread_local! {
    static ORIGIN: RefCell<State> = RefCell::new(State::default());
    /// Argument vectors to reuse: a command costs no allocation here.
    static SPARE: RefCell<Vec<Vec<Bytes>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f`, a command with these arguments, so that its writes can be journaled as the
/// command itself when `replayable`. Nests (EXEC runs its queue inside).
pub fn run<R>(args: &[Bytes], replayable: bool, f: impl FnOnce() -> R) -> R {
    let mut kept = SPARE.with_borrow_mut(Vec::pop).unwrap_or_default();
    if replayable {
        kept.extend_from_slice(args);
    }
    let outer = ORIGIN.with_borrow_mut(|s| {
        std::mem::replace(
            s,
            State {
                active: true,
                args: kept,
                replayable,
                writes: 0,
            },
        )
    });
    let result = f();
    let mut done = ORIGIN.with_borrow_mut(|s| std::mem::replace(s, outer));
    done.args.clear();
    // A huge command's vector is not kept.
    if done.args.capacity() <= 1024 {
        SPARE.with_borrow_mut(|spare| spare.push(done.args));
    }
    result
}

/// Runs `f` with no command around it: its writes are journaled as state (a client
/// served from another's push, replayed effects).
pub fn detached<R>(f: impl FnOnce() -> R) -> R {
    let outer = ORIGIN.with_borrow_mut(std::mem::take);
    let result = f();
    ORIGIN.with_borrow_mut(|s| *s = outer);
    result
}

/// Called by each write call that changed something, under its locks: when `journal`
/// is given and this is the first such call of a replayable command, hands the command's
/// arguments to it and returns true (the caller then journals nothing else).
///
/// # Panics
/// In debug builds, when a command marked replayable makes a second changing write call:
/// its table entry is wrong (a replay would redo the first call's work at the wrong
/// place in the log). Counted whether or not a journal is installed, so tests catch it.
pub(crate) fn on_write(journal: Option<impl FnOnce(&[Bytes])>) -> bool {
    ORIGIN.with_borrow_mut(|s| {
        if !s.active {
            return false;
        }
        s.writes += 1;
        debug_assert!(
            !(s.replayable && s.writes > 1),
            "command {:?} is marked replayable but changed the keyspace in {} calls",
            s.args.first(),
            s.writes
        );
        match journal {
            Some(journal) if s.replayable && s.writes == 1 => {
                journal(&s.args);
                true
            }
            _ => false,
        }
    })
}
