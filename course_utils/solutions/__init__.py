"""The reference solutions of the notebooks' exercises, one plain file per notebook.

Nothing in a notebook imports or runs these: a learner asks for one with
``show_solution("the_function_name")`` (from :mod:`course_utils.exercises`),
which prints its source without executing it, or opens the file. Each function
is the reference its checker is tested against (``tests/test_exercises.py``).

- ``setup``: notebook 00 (how exercises work)
- ``basics``: notebook 01
- ``gan``: notebook 02
- ``vae``: notebook 03
- ``diffusion``: the diffusion notebook (04 once the series is renumbered, issue 22)
- ``gpt``: notebook 05
- ``hf``: notebook 06
- ``evaluation``: notebook 07
"""
