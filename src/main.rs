fn main() {
    for crd in sync_client_operator::api::crds() {
        print!("{}", sync_client_operator::api::crd_yaml(&crd).unwrap());
    }
}
