"""Text the methods and benchmarks read: corpora and their sources, bilingual dictionaries."""
