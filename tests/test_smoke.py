async def test_health_and_login(any_store_server):
    from tests.helpers import seed_school

    school = await seed_school(any_store_server)
    admin = await any_store_server.logged_in(school.admin)
    me = await admin.json("GET", "/me")
    assert me["user"]["full_name"] == "Trần Quản Trị"
