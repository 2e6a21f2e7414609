import pytest

from support.configdoc import DOC, documented_table, expected_table

pytestmark = pytest.mark.unit


def test_configuration_doc_lists_exactly_the_variables_the_code_reads():
    documented = documented_table(DOC.read_text())
    assert documented == expected_table(), (
        "docs/configuration.md is out of step with the settings models; regenerate the table with "
        "`.venv/bin/python tests/support/configdoc.py --write` and review the diff")
