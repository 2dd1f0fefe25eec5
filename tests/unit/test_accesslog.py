from stigmer.support.accesslog import redact_query


def test_redacts_credentials_and_keeps_the_rest():
    assert redact_query(b"") == ""
    assert redact_query(b"apiKey=a&API_KEY=b&access_token=c&key=d&prefix=agents/&limit=5") == \
        "?apiKey=***&API_KEY=***&access_token=***&key=***&prefix=agents/&limit=5"
    assert "\n" not in redact_query(b"prefix=a%0Afake")
