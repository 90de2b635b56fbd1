"""Training: one composed loop (`loop.Loop` with its cadences, metric window, evaluation summary and clock; step
checkpoints in `resume`) driving offline training on a dataset, online off-policy training in an environment,
and the plain update steps that unlearning, auditing and influence use to train an existing agent further."""
