"""Serial family: discovery, nubs, ports over termios."""
