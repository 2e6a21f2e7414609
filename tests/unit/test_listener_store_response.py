"""The listener's direct C-STORE-RSP encoder writes exactly pynetdicom's bytes, and only for plain success."""

import pytest
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode

from services.listener.store_response import encode_plain_store_response

MR = "1.2.840.10008.5.1.4.1.1.4"


def response(instance: str, message_id: int, status: int = 0x0000) -> C_STORE:
    primitive = C_STORE()
    primitive.MessageIDBeingRespondedTo = message_id
    primitive.AffectedSOPClassUID = MR
    primitive.AffectedSOPInstanceUID = instance
    primitive.Status = status
    return primitive


def pynetdicom_bytes(primitive: C_STORE) -> bytes:
    message = C_STORE_RSP()
    message.primitive_to_message(primitive)
    return encode(message.command_set, True, True)


@pytest.mark.parametrize("instance", ["1.2.3", "1.2.34", "2.25." + "1" * 59])
@pytest.mark.parametrize("message_id", [1, 2, 65535])
def test_success_response_matches_pynetdicom(instance: str, message_id: int) -> None:
    primitive = response(instance, message_id)
    assert encode_plain_store_response(primitive) == pynetdicom_bytes(primitive)


@pytest.mark.parametrize("status", [0xA700, 0xC001, 0xB000])
def test_other_statuses_are_left_to_pynetdicom(status: int) -> None:
    assert encode_plain_store_response(response("1.2.3", 7, status)) is None


def test_a_response_with_an_error_comment_is_left_to_pynetdicom() -> None:
    primitive = response("1.2.3", 7)
    primitive.ErrorComment = "note"
    assert encode_plain_store_response(primitive) is None


def test_a_request_is_left_to_pynetdicom() -> None:
    request = C_STORE()
    request.MessageID = 1
    assert encode_plain_store_response(request) is None
