//! Builds as Kiln understands them apart from storage: what a build tool's output says, and
//! how its log lines are shown.

pub mod ansi;
pub mod bitbake_output;
