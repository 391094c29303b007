"""What a user of the installed package sees: version, license, type information."""

from importlib import resources

from conftest import REPO

import syllabus


def test_version_flag_prints_the_package_version(cli):
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"syllabus {syllabus.__version__}"


def test_package_ships_py_typed_and_repo_has_the_apache_license():
    assert (resources.files("syllabus") / "py.typed").is_file()
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
