//! Builds as Kiln understands them apart from storage: what a build tool's output says.

pub mod bitbake_output;
