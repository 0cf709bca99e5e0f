//! End-to-end tests: the real server over real HTTP on 127.0.0.1:0.

mod binary;
mod crash;
mod helpers;
mod messages;
mod pipeline;
mod projects;
mod retention;
mod smoke;
mod subscriptions;
mod topics;
