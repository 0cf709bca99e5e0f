//! End-to-end tests: the real server over real HTTP on 127.0.0.1:0.

mod acl;
mod authz;
mod binary;
mod client;
mod crash;
mod helpers;
mod members;
mod messages;
mod pipeline;
mod projects;
mod prometheus;
mod push;
mod push_config;
mod push_flows;
mod receiver;
mod registrations;
mod resource_metrics;
mod retention;
mod schemas;
mod smoke;
mod status;
mod streams;
mod subscriptions;
mod topics;
mod users;
mod workflow;
