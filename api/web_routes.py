"""The web page: static files under /web, and / answering with the page itself; the API docs at
/docs, with Swagger UI's files served from the package (swagger-ui-dist, api/web/swagger/)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parent / "web"

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def add_web_page(app: FastAPI) -> None:
    """Serve the page at / and its assets at /web, and the API docs at /docs (all local: they
    work offline; the app is made with docs_url=None, redoc_url=None)."""

    @router.get("/docs")
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} API",
            swagger_js_url="/web/swagger/swagger-ui-bundle.js", swagger_css_url="/web/swagger/swagger-ui.css",
            swagger_favicon_url="/web/swagger/favicon-32x32.png", oauth2_redirect_url=None,
            swagger_ui_parameters={"validatorUrl": None},  # no call to validator.swagger.io
        )

    app.include_router(router)
    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
