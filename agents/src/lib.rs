//! Tabular agents, REINFORCE and the DQN family (filled by a later issue).
