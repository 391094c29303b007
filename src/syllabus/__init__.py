"""syllabus: the phi-1 "Textbooks Are All You Need" recipe as a toolkit."""

__version__ = "0.1.0"
