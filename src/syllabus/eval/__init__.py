"""Evaluation: generate completions for HumanEval/MBPP, execute them in the sandbox, pass@k, NLL."""
