//! One module per subcommand.

pub mod check_env;
pub mod envs;
