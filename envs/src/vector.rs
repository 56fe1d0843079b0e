//! Vector envs: N copies stepped together.
