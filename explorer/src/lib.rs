//! The public explorer (see ARCHITECTURE.md); built in a later issue.
