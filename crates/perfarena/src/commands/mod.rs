//! One module per command; each takes resolved settings and returns an exit code.

pub mod demo;
pub mod init;
pub mod parse;
pub mod report;
pub mod run;
pub mod selftest;
pub mod tasks;
