from chat_support import stream, streamed_reply, user_input
from agents.testing import assistant_message, function_call

async def test_smoke(client, model, alice, store):
    model.enqueue(streamed_reply(["Adding ", "it."], call=function_call("add_task", {"title": "buy milk"}, call_id="call_1")))
    model.enqueue([assistant_message("Added buy milk.")])
    r = await stream(client, alice, {"type": "threads.create", "params": {"input": user_input("add buy milk")}})
    for d in r.datas: print(d[:300])
    tid = r.events[0].thread.id
    page = await store.load_thread_items(tid, None, 50, "asc", alice)
    for it in page.data: print(it.model_dump_json()[:400])
    model.enqueue([function_call("complete_task", {"task_id": 999999}, call_id="call_2")])
    model.enqueue([assistant_message("done?")])
    r = await stream(client, alice, {"type": "threads.add_user_message", "params": {"thread_id": tid, "input": user_input("complete 999999")}})
    for d in r.datas: print(d[:300])
    print(model.calls[-2].input)
    print(model.calls[-1].input)
