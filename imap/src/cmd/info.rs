//! CAPABILITY, NOOP/CHECK, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342).

use tokio::io::{AsyncRead, AsyncWrite};

use super::Done;
use crate::refusal::Status;
use crate::session::{Ended, Flow, Session};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn capability(&mut self, tag: &str) -> Done {
        let caps = self.capabilities();
        self.untagged(&format!("CAPABILITY {caps}"));
        Done::ok(tag, "CAPABILITY completed")
    }

    pub(super) fn noop(&mut self, tag: &str) -> Done {
        Done::ok(tag, "NOOP completed")
    }

    pub(super) fn logout(&mut self, tag: &str) -> Done {
        self.untagged("BYE mshub logging out");
        self.tagged(tag, Status::Ok, "LOGOUT completed");
        Done::Flow(Flow::Stop(Ended::Logout))
    }

    pub(super) fn id(&mut self, tag: &str) -> Done {
        self.untagged("ID (\"name\" \"mshub\" \"vendor\" \"mshub\")");
        Done::ok(tag, "ID completed")
    }

    pub(super) fn enable(&mut self, tag: &str, caps: Vec<String>) -> Done {
        let mut enabled = Vec::new();
        for cap in caps {
            if cap == "IMAP4REV2" && !self.rev2 {
                self.rev2 = true;
                enabled.push("IMAP4rev2");
            }
            if cap == "QRESYNC" && !self.qresync {
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                self.qresync = true;
                self.condstore = true;
                enabled.push("QRESYNC");
            }
            if cap == "CONDSTORE" && !self.condstore {
                self.condstore = true;
                enabled.push("CONDSTORE");
            }
        }
        self.untagged(format!("ENABLED {}", enabled.join(" ")).trim_end());
        Done::ok(tag, "ENABLE completed")
    }

    pub(super) fn namespace(&mut self, tag: &str) -> Done {
        // One personal namespace, no shared or other users' mailboxes.
        self.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
        Done::ok(tag, "NAMESPACE completed")
    }
}
