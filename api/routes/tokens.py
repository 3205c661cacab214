"""Tokens (admin): list, create, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.auth import Role, new_token, token_digest
from api.deps import DbDep, ManageTokens, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from api.schemas import TokenCreated, TokenIn, TokenOut
from telemetry.storage.tokens import StoredToken, insert_token, list_tokens, revoke_token

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], responses=ERROR_RESPONSES)


def token_out(row: StoredToken) -> TokenOut:
    """The API form of a stored token."""
    return TokenOut(
        token_id=row.token_id,
        role=Role(row.role),
        districts=row.districts,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.get("", summary="List tokens (admin)")
async def tokens(_: ManageTokens, conn: DbDep) -> list[TokenOut]:
    """Every token record, newest first (the tokens themselves are not stored)."""
    return [token_out(r) for r in await list_tokens(conn)]


@router.post("", status_code=201, summary="Create a token (admin)")
async def create_token(body: TokenIn, _: ManageTokens, conn: DbDep) -> TokenCreated:
    """A new token; the answer is the only time it is shown."""
    if body.role is Role.CREW and not body.districts:
        raise ApiError(422, "invalid_request", "districts: a crew token needs at least one")
    token = new_token()
    row = await insert_token(
        conn, token_digest(token), body.role.value, sorted(set(body.districts)), body.label
    )
    return TokenCreated(token=token, **token_out(row).model_dump())


@router.delete("/{token_id}", summary="Revoke a token (admin)")
async def revoke(
    token_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    _: ManageTokens,
    conn: DbDep,
    runtime: RuntimeDep,
) -> TokenOut:
    """Revoke now in this process; other processes within ``RASD_API_AUTH_CACHE_S``."""
    row = await revoke_token(conn, token_id)
    if row is None:
        raise ApiError(404, "not_found", f"no token {token_id}")
    runtime.tokens.forget()
    return token_out(row)
