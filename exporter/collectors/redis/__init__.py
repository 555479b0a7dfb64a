"""The redis collector: its job, target model and the pure analysis of what it reads."""
