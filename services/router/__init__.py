"""The stream router: a thin I/O shell that applies the compiled policy to Kafka traffic."""
