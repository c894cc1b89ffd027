"""Only what pyproject.toml cannot say: the wheel carries the top-level studies/,
slurm/profiles/, slurm/local/ and docs/examples/ as package data under ``gmgbench/harness/_assets/``.

They stay at the top of the repository (that is where a user of the checkout looks for
them); ``gmgbench.harness.assets`` reads them from the package in an installed wheel and from the
checkout in an editable install. Everything else is configured in pyproject.toml.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# Keep in step with harness/assets.py (ASSETS) and MANIFEST.in (the sdist).
ASSETS = {"studies": "*.yaml", "slurm/profiles": "*.yaml", "slurm/local": "*.sh", "docs/examples": "*.py"}


class build_py_with_assets(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's folders directly
            return
        here = Path(__file__).resolve().parent
        for folder, pattern in ASSETS.items():
            target = Path(self.build_lib) / "gmgbench" / "harness" / "_assets" / folder
            self.mkpath(str(target))
            for src in sorted((here / folder).glob(pattern)):
                self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": build_py_with_assets})
