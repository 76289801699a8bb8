"""The sandbox: killable child processes, the jail they start in, and the channel back."""
