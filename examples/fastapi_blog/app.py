"""The blog's API: posts, comments, and each post's history as JSON.

Run it with ``DATABASE_URL=sqlite+aiosqlite:///blog.db uvicorn fastapi_blog.app:app``.
"""

# No "from __future__ import annotations" here: FastAPI reads the annotations of the
# endpoints defined inside create_app, and a string annotation could not see `Db`.
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from fastapi_blog.models import Base, Comment, Post
from vestige.history import aio
from vestige.integrations import VestigeMiddleware
from vestige.integrations.fastapi import change_context


class PostIn(BaseModel):
    title: str
    body: str = ""


class CommentIn(BaseModel):
    body: str


def current_user(x_user: Annotated[str | None, Header()] = None) -> str | None:
    """Who is calling; a stand-in for the application's own authentication."""
    return x_user


def create_app(database_url: str | None = None) -> FastAPI:
    url = database_url or os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///blog.db")
    engine = create_async_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def session() -> AsyncIterator[AsyncSession]:
        async with sessions() as db:
            yield db

    Db = Annotated[AsyncSession, Depends(session)]

    # The middleware records the client address and the request id (X-Request-ID, or a
    # fresh one, echoed in the response); the dependency adds the user that the
    # application's authentication (here: current_user) found.
    app = FastAPI(dependencies=[Depends(change_context(user=current_user))])
    app.add_middleware(VestigeMiddleware)

    @app.post("/posts", status_code=201)
    async def create_post(data: PostIn, db: Db) -> dict[str, Any]:
        post = Post(title=data.title, body=data.body)
        db.add(post)
        await db.commit()
        return {"id": post.id, "title": post.title}

    @app.patch("/posts/{post_id}")
    async def edit_post(post_id: int, data: PostIn, db: Db) -> dict[str, Any]:
        post = await db.get(Post, post_id)
        if post is None:
            raise HTTPException(404, f"no post {post_id}")
        post.title, post.body = data.title, data.body
        await db.commit()
        return {"id": post.id, "title": post.title}

    @app.post("/posts/{post_id}/comments", status_code=201)
    async def add_comment(post_id: int, data: CommentIn, db: Db) -> dict[str, Any]:
        comment = Comment(post_id=post_id, body=data.body)
        db.add(comment)
        await db.commit()
        return {"id": comment.id, "post_id": post_id}

    @app.delete("/posts/{post_id}", status_code=204)
    async def delete_post(post_id: int, db: Db) -> None:
        post = await db.get(Post, post_id)
        if post is not None:
            await db.delete(post)
            await db.commit()

    @app.get("/posts/{post_id}/history")
    async def post_history(post_id: int, db: Db) -> dict[str, Any]:
        """Every version of the post, oldest first, in Vestige's one JSON shape."""
        versions = await aio.history(db, Post, post_id)
        if not versions:
            raise HTTPException(404, f"no history for post {post_id}")
        return {"post": post_id, "versions": [version.to_dict() for version in versions]}

    @app.get("/changes")
    async def changes_of_request(request_id: str, db: Db) -> list[dict[str, Any]]:
        """Every transaction one request wrote, with the records it touched."""
        found = await aio.changes(db, context={"request_id": request_id})
        return [transaction.to_dict() for transaction in found]

    app.state.engine = engine
    return app


async def create_schema(app: FastAPI) -> None:
    """Create the tables (a real application runs its Alembic migrations instead)."""
    async with app.state.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await app.state.engine.dispose()  # the server's event loop opens its own connections


app = create_app()
