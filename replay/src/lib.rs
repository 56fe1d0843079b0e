//! Uniform, n-step and prioritized experience replay (filled by a later issue).
