"""The application: what composes the libraries (avatarclip_core, face2param) into avatar jobs.

Floors (docs/ARCHITECTURE.md; tests/test_architecture.py enforces them): the libraries never import
this package; its modules never import workers/ or web/, except the entry points (cli/, bench*),
which start servers, workers and benchmarks and import those lazily.

    pipelines/  sliders, text, photo (+ face) jobs and the export step they share
    kinds.py    job kinds: validation at submit (torch-free), routing, runner names
    jobs.py     the runners a worker calls, one per kind
    errors.py   the errors job kinds raise
    cli/        the `avatar` command (cli/photo.py: the photo commands)
    bench*.py   `avatar bench`
"""
