//! COPY and MOVE, with their UID forms (RFC 9051 §6.4.7-8, RFC 6851) and RFC 4315 COPYUID.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Done;
use crate::codec::write::sequence_set;
use crate::codec::SeqSet;
use crate::refusal::Refusal;
use crate::session::{Flow, Selected, Session};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn copy(
        &mut self,
        tag: &str,
        sel: &Selected,
        set: &SeqSet,
        target: &str,
        uid: bool,
        moving: bool,
    ) -> Done {
        if moving {
            if let Err(refusal) = sel.writable() {
                return Done::refused(tag, refusal);
            }
        }
        let uids = match sel.resolve(set, uid) {
            Ok(u) => u,
            Err(e) => return Done::refused(tag, e),
        };
        let from = sel.mailbox.id;
        let store = self.imap.store.clone();
        let to = match store.mailbox(sel.mailbox.account, target) {
            Ok(Some(m)) => m,
            Ok(None) => return Done::refused(tag, Refusal::NoSuchTarget),
            Err(e) => {
                self.store_failure(tag, &e);
                return Done::Flow(Flow::Continue);
            }
        };
        let result = if moving {
            store.move_messages(from, &uids, to.id)
        } else {
            store.copy_messages(from, &uids, to.id)
        };
        let pairs = match result {
            Ok(p) => p,
            Err(e) => {
                self.store_failure(tag, &e);
                return Done::Flow(Flow::Continue);
            }
        };
        let verb = if moving { "MOVE" } else { "COPY" };
        if pairs.is_empty() {
            return Done::ok(tag, format!("{verb} completed (nothing to do)"));
        }
        // RFC 4315 §3: the whole source and destination sets, in corresponding order. The
        // store answers in ascending source order and assigns ascending destination UIDs, so
        // both sets compact into ranges without losing the correspondence (listed one by one
        // otherwise).
        let src: Vec<u32> = pairs.iter().map(|(s, _)| s.get()).collect();
        let dst: Vec<u32> = pairs.iter().map(|(_, d)| d.get()).collect();
        let ascending = |v: &[u32]| v.windows(2).all(|w| w[0] < w[1]);
        let set = |v: &[u32]| {
            if ascending(&src) && ascending(&dst) {
                sequence_set(v)
            } else {
                v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            }
        };
        let code = format!("COPYUID {} {} {}", to.uid_validity.0, set(&src), set(&dst));
        if moving {
            // RFC 6851 §4.3: COPYUID comes untagged, before the EXPUNGEs.
            self.untagged(&format!("OK [{code}] Moved"));
            Done::ok(tag, "MOVE completed")
        } else {
            Done::ok(tag, format!("[{code}] COPY completed"))
        }
    }
}
