"""A plugin's whole contract test: every component it registers, checked by ganenc.testing."""

from ganenc.testing import contract_tests

test_contracts = contract_tests("ganenc-example-gan")
