"""What the libraries and stages share that can change an output: file I/O, seeds and the device, figures.

Each is a DVC dep of the stages that import it (unlike `pipeline.core`, the plumbing)."""
