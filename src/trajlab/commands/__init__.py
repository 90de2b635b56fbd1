"""The commands behind the CLI, as importable functions: each takes one config and returns its result.json.

Commands compose the layers below them (data, training, the methods, reports); the CLI only parses options
into their configs. `from trajlab.commands.forget import run` is `trajlab forget` without a shell.
"""
