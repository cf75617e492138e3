//! Applying journaled state to the keyspace (a journal's replay at start). The journal
//! decides what a record means; these are the writes it needs beside the commands it
//! replays through its front end.

use crate::{DbRef, Entry, Value};
use bytes::Bytes;

/// Stores `entry` at `key`, whatever was there.
pub fn put(db: &DbRef<'_>, key: &[u8], entry: Entry) {
    db.write(key, |slot| slot.put(entry.value, entry.expire_at));
}

/// Removes these members from the set at `key` (the key goes when it empties); nothing
/// when the key holds no set.
pub fn set_removed(db: &DbRef<'_>, key: &[u8], members: &[Bytes]) {
    db.write(key, |slot| {
        let Some(entry) = slot.get() else { return };
        let Value::Set(set) = &mut entry.value else {
            return;
        };
        for m in members {
            set.remove(m);
        }
        if set.is_empty() {
            slot.remove();
        }
    });
}
