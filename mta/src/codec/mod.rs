//! SMTP syntax, with no knowledge of the store or the directory: commands are parsed by
//! `smtp-proto` (re-exported here), replies are typed values encoded by [`Reply::encode`].

pub mod reply;

pub use reply::Reply;
pub use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, RequestReceiver};
pub use smtp_proto::{Error as SyntaxError, MailFrom, RcptTo, Request};
